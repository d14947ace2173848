"""Campaigns: segments of customers, broadcasts to them on the channel each prefers, results.

- `segments.py`: saved filters compiled to one SQL query (both dialects), previewed;
- `spec.py`: what a marketer writes (content per channel and variant, schedule, A/B, limits);
- `render.py`: one recipient's message on one channel (personalised in the sandbox, escaped,
  links tracked, how to stop appended);
- `engine.py`: the sending engine the scheduler ticks (start, expand, queue, results, finish);
- `service.py`: what the CLI, the API, the bot and the console call (create, preview, test,
  schedule, …);
- `results.py`: figures per channel and variant; replies, clicks and opt-outs recorded;
- `activity.py`: the same results over time (sent, replies, clicks, opt-outs);
- `data.py`: recipients follow the customer (merge, export, forget).
"""
