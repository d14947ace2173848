"""The customer path's cost: SMS through the dialogue beside the bare ingest, in the same run.

    .venv/bin/python bench/dialogue.py            # 5,000 messages from 1,000 customers
    .venv/bin/python bench/dialogue.py --quick    # 1,000 from 200

On an SQLite file (synchronous=NORMAL, the default), one commit per message, it prints:
- messages per second through `Timeline.ingest` (dedupe, identity, timeline, conversation);
- the same with routing, deadlines and follow-ups listening (the automation of crm/automation.py);
- the same messages through the core's inbox, the customer dialogue, with all that and the
  acknowledgement on (what `crm run` does with each message);
- "HELP" keywords through the dialogue: from the call to the answer's outbox row committed,
  p50 and p99, beside the plain messages' p50 and p99 through the bare ingest.
Nothing is sent (no channel runs); the outbox rows are what a dispatcher would send.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/email.py would shadow the standard library's `email` (imported by the libraries below).
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 1 else 0.0


async def run(path: str, messages: int, customers: int, mode: str,
              text: str) -> tuple[float, list[float]]:
    from bot import Dialogue
    from crm import db
    from crm.automation import automation
    from crm.config import parse_settings
    from crm.services import Core
    from crm.types import Channel, InboundMessage

    url = f"sqlite://{path}"
    await db.init(url)
    await db.upgrade()
    core = Core.build(parse_settings({"database": {"url": url},
                                      "bot": {"acknowledge": ["sms"]}}))
    receive = core.timeline.ingest
    if mode in ("automation", "dialogue"):
        automation(core)
    if mode == "dialogue":
        core.inbox = Dialogue(core)
        receive = core.inbox.receive
    msgs = [InboundMessage(Channel.SMS, f"m-{n}", f"+1202555{n % customers:04d}", text=text)
            for n in range(messages)]
    times: list[float] = []
    start = time.perf_counter()
    for m in msgs:
        t0 = time.perf_counter()
        await receive(m)
        times.append(time.perf_counter() - t0)
    rate = len(msgs) / (time.perf_counter() - start)
    await db.close()
    return rate, times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    messages, customers = (1_000, 200) if args.quick else (5_000, 1_000)
    logging.disable(logging.INFO)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        bare, bare_t = await run(f"{tmp}/a.sqlite3", messages, customers, "bare", "where is it?")
        auto, auto_t = await run(f"{tmp}/b.sqlite3", messages, customers, "automation",
                                 "where is it?")
        full, full_t = await run(f"{tmp}/c.sqlite3", messages, customers, "dialogue",
                                 "where is it?")
        _, help_t = await run(f"{tmp}/d.sqlite3", messages, customers, "dialogue", "HELP")
    print(f"{messages:,} SMS from {customers:,} customers, SQLite, one commit each")
    print(f"  bare Timeline.ingest        {bare:8.0f} msg/s   p50 {_p(bare_t, 50):5.2f} ms"
          f"   p99 {_p(bare_t, 99):5.2f} ms")
    print(f"  with routing and deadlines  {auto:8.0f} msg/s   p50 {_p(auto_t, 50):5.2f} ms"
          f"   p99 {_p(auto_t, 99):5.2f} ms   ({auto / bare:.0%} of bare)")
    print(f"  through the dialogue        {full:8.0f} msg/s   p50 {_p(full_t, 50):5.2f} ms"
          f"   p99 {_p(full_t, 99):5.2f} ms   ({full / bare:.0%} of bare, "
          f"{full / auto:.0%} of the line above)")
    print(f"  HELP, answer queued         {'':8}         p50 {_p(help_t, 50):5.2f} ms"
          f"   p99 {_p(help_t, 99):5.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
