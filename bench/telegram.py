"""Telegram: how late the managers' topic is, and how close outbound gets to Telegram's ceiling.

    .venv/bin/python bench/telegram.py

Everything runs in one process on loopback: the whole service (crm.app.App, SQLite file) with
python-telegram-bot talking to the Bot API double (tests/support/telegram_double.py), which
enforces Telegram's limits (30 messages/s per bot, 1/s per private chat, 20/min per group).

1. Mirror latency: from a customer's update being queued at the double to its copy arriving in
   the managers' topic (median, p99), for 10 and 100 customers writing at once, one message
   each; and 10 customers writing 10 messages each (coalescing). Baseline: one bare
   `sendMessage` round trip through the same client.
   Telegram allows 20 messages a minute into one group, so 100 *different* customers cannot
   reach their 100 topics in under ~5 minutes however it is built; that case is run with the
   double's group limit lifted (the pipeline's own cost) and the floor under the real limit is
   printed beside it.
2. Outbound rate: 1,000 replies queued to 1,000 chats, against the 30/s ceiling (goal >= 95%),
   each delivered once.
"""

from __future__ import annotations

import sys

# bench/email.py would shadow the standard library's `email` for scripts run from bench/.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import asyncio  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUP = -1001234567890


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    import structlog

    from crm import db
    from crm.app import App, _telegram
    from crm.config import parse_settings
    from crm.types import Channel, InboundMessage
    from tests.support.telegram_double import TelegramDouble, user

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.basicConfig(level=logging.WARNING)
    tmp = tempfile.TemporaryDirectory(prefix="bench-telegram-")
    double = await TelegramDouble().start()
    runs = iter(range(100))

    async def service(**telegram: Any) -> App:
        url = f"sqlite://{tmp.name}/bench-{next(runs)}.sqlite3"
        await db.init(url)
        await db.upgrade()
        settings = parse_settings({
            "database": {"url": url}, "http": {"port": 0},
            "outbox": {"poll_interval": 0.2, "max_in_flight": 100},
            "telegram": {"token": double.token, "api_base_url": double.base_url,
                         "poll_timeout": 2, **telegram}})
        return App(settings, extra_channels=[_telegram], builtin_channels=False,
                   manage_database=False)

    # Baseline: one bare round trip through python-telegram-bot to the double.
    from telegram import Bot
    bot = Bot(double.token, base_url=f"{double.base_url}/bot")
    async with bot:
        trips = []
        for n in range(25):  # under the double's 30/s: a round trip, not a flood wait
            start = time.monotonic()
            await bot.send_message(10_000_000 + n, "ping")
            trips.append(time.monotonic() - start)
    print(f"baseline: sendMessage round trip  median {statistics.median(trips) * 1000:6.1f} ms  "
          f"p99 {pct(trips, 0.99) * 1000:6.1f} ms")

    async def mirror_latency(customers: int, each: int, group_limit: int) -> list[float]:
        double.reset()
        double.per_group_minute = group_limit
        app = await service(managers_chat_id=GROUP)
        async with app:
            if group_limit > 20:  # lift our own guards too, to see the pipeline's cost
                from channels.telegram.limits import Windows
                from crm.ports import RateLimits

                sender = app.channels[0].sender
                sender.windows = Windows(group=(group_limit, 60.0))  # type: ignore[union-attr]
                sender.limits = RateLimits(30, lambda _a: None)  # type: ignore[union-attr,misc]
            queued: dict[str, float] = {}
            for k in range(each):
                for n in range(customers):
                    text = f"msg {k} from customer {n}"
                    double.customer_says(user(20_000 + n, f"C{n}"), text)
                    queued[text] = time.monotonic()
            arrived: dict[str, float] = {}

            def done() -> bool:
                for s in double.sent_to(GROUP):
                    for text in queued:
                        if text not in arrived and f"{text}\n" in s.text + "\n":
                            arrived[text] = s.at
                return len(arrived) == len(queued)

            await double.wait_for(done, timeout=600)
        await db.close()
        return [arrived[t] - queued[t] for t in queued]

    for customers, each, limit, note in (
            (10, 1, 20, "real group limit"),
            (10, 10, 20, "real group limit, coalesced"),
            (100, 1, 100_000, "group limit lifted")):
        lat = await mirror_latency(customers, each, limit)
        msgs = len(double.sent_to(GROUP))
        print(f"mirror {customers:3d} customers x {each:2d} msg ({note:28s}): "
              f"median {statistics.median(lat):6.2f} s  p99 {pct(lat, 0.99):6.2f} s  "
              f"({msgs} messages into the group)")
    print("       100 customers under the real limit: floor ~ (100 - 20) / 20 per minute = "
          "240 s for the last topic (Telegram's 20/min per group)")

    # Outbound rate: 1,000 replies to 1,000 chats.
    double.reset()
    app = await service()
    async with app:
        core = app.core
        assert core is not None
        ids = []
        for n in range(1000):
            said = double.message(30_000 + n, user(30_000 + n), "hi")
            r = await core.timeline.ingest(InboundMessage(
                Channel.TELEGRAM, f"{30_000 + n}:{said['message_id']}", str(30_000 + n),
                text="hi"))
            ids.append(r.customer_id)
        await double.wait_for(lambda: True)
        double.sent.clear()
        double.rejected.clear()
        start = time.monotonic()
        for n, customer_id in enumerate(ids):
            await core.conversations.send(customer_id, f"reply {n}")
        await double.wait_for(lambda: len(double.sent) >= 1000, timeout=300)
        first = min(s.at for s in double.sent)
        last = max(s.at for s in double.sent)
        elapsed = time.monotonic() - start
    await db.close()
    per_chat = Counter(s.chat_id for s in double.sent)
    rate = 999 / (last - first)
    print(f"outbound 1,000 replies to 1,000 chats: {rate:5.1f} msg/s between first and last "
          f"({rate / 30 * 100:5.1f}% of the 30/s ceiling; {1000 / elapsed:5.1f} msg/s from "
          f"queueing); 429s: {sum(1 for r in double.rejected if r[1] == 429)}; delivered once: "
          f"{set(per_chat.values()) == {1} and len(per_chat) == 1000}")
    await double.stop()
    tmp.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
