"""Outbox lanes: live replies on Telegram while a 20,000-message campaign is queued.

    .venv/bin/python bench/lanes.py [--quick]

Everything runs in one process on loopback: the whole service (crm.app.App, a SQLite file,
the default [outbox] settings) with python-telegram-bot talking to the Bot API double
(tests/support/telegram_double.py) at Telegram's real limits: 30 messages/s per bot (answered
with 429 past it), 1/s per private chat.

1. Baseline: 50 live replies (managers answering 50 customers through Conversations.send) with
   an empty queue.
2. Loaded: 20,000 bulk rows (priority BULK, to 20,000 distinct private chats) are queued and
   the bulk stream is let reach its steady rate; then the same 50 live replies, at the same
   moments, to other chats.

Printed: the live replies' queued-to-delivered time (from the moment the reply is handed to
the CRM, so the queueing transaction counts too, to the moment the double received it), p50 and
p99 for both runs (goal: loaded p99 within 1.5 s of the baseline's); and, over the window from
the first live reply to the last one's delivery, the bulk rate as a share of the 30/s ceiling
(goal: at least 90%), beside the whole channel's use of it and the live lane's share of what
was sent, with the 429s the double answered and how often the sender's own window guard made a
send wait. The campaign is not drained: a steady window is what is measured.

Live arrivals are a Poisson process at 1 reply a second (seeded, and conditioned on its count,
so both runs see the same moments, over 50 s): replies come from people (several managers, and
the bot answering customers), each on their own, so they arrive independently, bunched at times;
1 a second is a busy support team (3,600 replies an hour, several times a usual peak) and still
leaves the campaign most of the channel, which is what the lanes must do: give a reply the next
slot, not a share of the rate.
"""

from __future__ import annotations

import sys

# bench/email.py would shadow the standard library's `email` for scripts run from bench/.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CEILING = 30.0  # Telegram's messages a second per bot
LIVE_CHATS = 50_000  # chat ids of the customers who get live replies
BULK_CHATS = 1_000_000  # chat ids of the campaign's recipients


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(bulk_rows: int, replies: int, rate: float) -> None:
    import structlog

    from crm import db
    from crm.app import App, _telegram
    from crm.config import parse_settings
    from crm.events import OutboxQueued
    from crm.models import Outbox
    from crm.types import Channel, InboundMessage, OutboundMessage, Priority
    from tests.support.telegram_double import TelegramDouble, user

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.basicConfig(level=logging.WARNING)
    tmp = tempfile.TemporaryDirectory(prefix="bench-lanes-")
    double = await TelegramDouble().start()
    # When each live reply is made: a Poisson process with `replies` arrivals over
    # replies / rate seconds is that many uniform moments in the span, sorted.
    rnd = random.Random(7)
    span = replies / rate
    moments = [0.0, *sorted(rnd.uniform(0, span) for _ in range(replies - 1))]
    runs = iter(range(10))

    async def run(bulk: int) -> dict[str, Any]:
        double.reset()
        url = f"sqlite://{tmp.name}/bench-{next(runs)}.sqlite3"
        await db.init(url)
        await db.upgrade()
        settings = parse_settings({
            "database": {"url": url}, "http": {"port": 0},
            "telegram": {"token": double.token, "api_base_url": double.base_url,
                         "poll_timeout": 2}})
        app = App(settings, extra_channels=[_telegram], builtin_channels=False,
                  manage_database=False)
        async with app:
            core = app.core
            assert core is not None
            sender: Any = app.channels[0].sender
            held: set[str] = set()  # sends the sender's own window held back (one per chat)
            check = sender.windows.wait

            def counted(chat_id: str, now: float, paid: bool = False) -> float:
                delay = float(check(chat_id, now, paid))
                if delay > 0:
                    held.add(chat_id)
                return delay

            sender.windows.wait = counted
            customers = []
            for n in range(replies):
                chat = LIVE_CHATS + n
                said = double.message(chat, user(chat), "hi")
                r = await core.timeline.ingest(InboundMessage(
                    Channel.TELEGRAM, f"{chat}:{said['message_id']}", str(chat), text="hi"))
                customers.append(r.customer_id)
            if bulk:
                await Outbox.bulk_create([Outbox(
                    channel=Channel.TELEGRAM, address=str(BULK_CHATS + n),
                    payload=OutboundMessage(Channel.TELEGRAM, str(BULK_CHATS + n),
                                            f"campaign {n}").to_payload(),
                    idempotency_key=f"bench:{n}", priority=Priority.BULK,
                    due_ms=int(time.time() * 1000)) for n in range(bulk)], batch_size=1000)
                await core.bus.emit(OutboxQueued(Channel.TELEGRAM, Priority.BULK))
                # Let the campaign reach its steady rate before the replies start.
                await double.wait_for(lambda: len(double.sent) >= 90, timeout=60)
            held.clear()
            rejected = len(double.rejected)
            # The double shares the service's event loop, so a long pause of the loop (a full
            # garbage collection walked the whole heap for ~80 ms here) makes requests that left
            # the sender before it reach the double after it, bunched: a 429 Telegram, which
            # sees them as they leave, would not send. Freezing what the setup built keeps
            # collections short; the longest stall of the loop is printed all the same.
            gc.collect()
            gc.freeze()
            stalls = [0.0]

            async def watch_loop() -> None:
                while True:
                    before = time.monotonic()
                    await asyncio.sleep(0.005)
                    stalls[0] = max(stalls[0], time.monotonic() - before - 0.005)

            watcher = asyncio.create_task(watch_loop())
            start = time.monotonic()
            made: dict[str, float] = {}
            for n, (customer_id, moment) in enumerate(zip(customers, moments, strict=True)):
                await asyncio.sleep(max(0.0, start + moment - time.monotonic()))
                made[f"reply {n}"] = time.monotonic()
                await core.conversations.send(customer_id, f"reply {n}")

            def arrived() -> dict[str, float]:
                return {s.text: s.at for s in double.sent if s.text in made}

            await double.wait_for(lambda: len(arrived()) >= replies, timeout=120)
            end = time.monotonic()
            watcher.cancel()
            gc.unfreeze()
            window = [s for s in double.sent if made["reply 0"] <= s.at <= end]
            delivered = arrived()
            result = {
                "latency": [delivered[text] - made[text] for text in made],
                "seconds": end - made["reply 0"],
                "bulk": sum(1 for s in window if s.chat_id >= BULK_CHATS),
                "all": len(window),
                "429": sum(1 for r in double.rejected[rejected:] if r[1] == 429),
                "held": len(held),
                "bulk_sent": sum(1 for s in double.sent if s.chat_id >= BULK_CHATS),
                "stall": stalls[0],
            }
        await db.close()
        return result

    base = await run(0)
    loaded = await run(bulk_rows)
    for name, r in (("empty queue", base), (f"{bulk_rows:,} bulk queued", loaded)):
        lat = r["latency"]
        print(f"live replies, {name:18s}: p50 {pct(lat, 0.5) * 1000:7.1f} ms  "
              f"p99 {pct(lat, 0.99) * 1000:7.1f} ms  max {max(lat) * 1000:7.1f} ms  "
              f"({len(lat)} replies; 429s {r['429']}; sends held by the sender's window "
              f"{r['held']}; "
              f"longest loop stall {r['stall'] * 1000:.0f} ms)")
    gap = pct(loaded["latency"], 0.99) - pct(base["latency"], 0.99)
    secs = loaded["seconds"]
    bulk_rate, all_rate = loaded["bulk"] / secs, loaded["all"] / secs
    print(f"live p99 with the campaign queued: {gap * 1000:+.1f} ms against the empty queue "
          f"(goal: within 1500 ms)")
    print(f"over {secs:.1f} s of live traffic: bulk {bulk_rate:5.2f} msg/s = "
          f"{bulk_rate / CEILING * 100:5.1f}% of the {CEILING:g}/s ceiling (goal >= 90%); "
          f"channel {all_rate:5.2f} msg/s = {all_rate / CEILING * 100:5.1f}%; live lane "
          f"{(loaded['all'] - loaded['bulk']) / max(1, loaded['all']) * 100:4.1f}% of what was "
          f"sent; {loaded['bulk_sent']:,} of {bulk_rows:,} campaign messages sent in all")
    await double.stop()
    tmp.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3,000 bulk rows and 15 live replies (about a minute)")
    args = parser.parse_args()
    if args.quick:
        asyncio.run(main(bulk_rows=3_000, replies=15, rate=1.0))
    else:
        asyncio.run(main(bulk_rows=20_000, replies=50, rate=1.0))
