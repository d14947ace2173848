"""Email throughput and latency: SMTP sends through the outbox, and APPEND → timeline via IDLE.

    .venv/bin/python bench/email.py            # 2,000 mails out, 60 mails in (~40 s)
    .venv/bin/python bench/email.py --quick    # 300 out, 30 in

1. Mails per second sent to a local SMTP server (aiosmtpd) through the outbox (rows committed,
   claimed by the dispatcher, sent by SmtpSender over one reused connection, outcome committed),
   beside a baseline measured in the same run: the same mails, built by the same compose(), sent
   by a bare aiosmtplib loop on one connection. Goal (issue 5): at least 80% of the baseline.
2. The delay from an IMAP APPEND (a real Dovecot) to the message being committed in the
   timeline, through IDLE. Goal: p99 under 2 s (Chatwoot polls once a minute).
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
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the standard library's `email` package: take bench/ off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from tests.support.smtp import SmtpServer


async def outbox_rate(db_url: str, smtp: SmtpServer, count: int) -> float:
    from channels.email.sender import SmtpSender
    from crm.config import parse_settings
    from crm.services import Core
    from crm.types import Channel, OutboundMessage, Priority

    settings = parse_settings({
        "database": {"url": db_url},
        "outbox": {"poll_interval": 0.2, "max_in_flight": 100},
        "email": {"imap_host": "127.0.0.1", "imap_username": "x@example.com",
                  "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
                  "from_address": "support@example.com", "smtp_rate_per_second": 100000},
    })
    core = Core.build(settings)
    sender = SmtpSender(settings.email)
    core.dispatcher.register(sender)
    async with core.bus.unit_of_work():
        for n in range(count):
            await core.outbox.enqueue(OutboundMessage(
                Channel.EMAIL, f"customer{n}@example.org", f"Answer number {n}",
                subject="Your order", reply_to=f"q{n}@example.org"),
                idempotency_key=f"bench:{n}", priority=Priority.LIVE)
    start = time.perf_counter()
    await core.dispatcher.start(single_process=True)
    await smtp.wait_total(count)
    elapsed = time.perf_counter() - start
    await core.dispatcher.stop()
    await sender.close()
    print(f"    SMTP connections opened by the sender: {sender.connections}")
    return count / elapsed


async def bare_rate(smtp: SmtpServer, count: int) -> float:
    import aiosmtplib

    from channels.email.compose import compose
    from crm.clock import utcnow
    from crm.types import Channel, OutboundMessage

    # The loop builds each mail as it sends it, like any program would: the same compose().
    start = time.perf_counter()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port, start_tls=False)
    await client.connect()
    for n in range(count):
        mail = compose(OutboundMessage(Channel.EMAIL, f"customer{n}@example.org",
                                       f"Answer number {n}", outbox_id=n + 1,
                                       subject="Your order", reply_to=f"q{n}@example.org"),
                       from_address="support@example.com", from_name="", now=utcnow(),
                       message_id=f"b{n}@example.com", default_subject="x")
        await client.send_message(mail, sender="support@example.com",
                                recipients=[f"customer{n}@example.org"])
    await client.quit()
    await smtp.wait_total(count)
    return count / (time.perf_counter() - start)


async def idle_latency(db_url: str, count: int) -> list[float]:
    from aiohttp import web

    from channels.email import build
    from crm.config import parse_settings
    from crm.events import MessageReceived
    from crm.services import Core
    from tests.support.dovecot import start_dovecot

    dovecot = start_dovecot()
    try:
        user = dovecot.add_user()
        with tempfile.TemporaryDirectory() as tmp:
            settings = parse_settings({"database": {"url": db_url}, "email": {
                "imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_security": "none",
                "imap_username": user, "imap_password": dovecot.users[user],
                "smtp_host": "127.0.0.1", "smtp_port": 1, "smtp_security": "none",
                "from_address": "support@example.com", "attachments_dir": tmp}})
            core = Core.build(settings)
            arrived: dict[int, asyncio.Event] = {}
            seen: list[int] = []

            async def on_received(event: MessageReceived) -> None:
                seen.append(event.message_id)
                arrived.setdefault(len(seen), asyncio.Event()).set()

            core.bus.subscribe(MessageReceived, on_received)
            runtime = build(core, web.Application())
            assert runtime is not None
            await runtime.start()
            reader = runtime.reader  # type: ignore[attr-defined]
            await asyncio.wait_for(reader.idle_ready.wait(), 15)
            client = await dovecot.client(user)
            delays: list[float] = []
            for n in range(count):
                raw = (f"From: c{n}@example.org\r\nTo: support@example.com\r\nSubject: q{n}\r\n"
                       f"Message-ID: <lat{n}@example.org>\r\n\r\nquestion {n}\r\n").encode()
                event = arrived.setdefault(n + 1, asyncio.Event())
                start = time.perf_counter()
                await client.append(raw, mailbox="INBOX")
                await asyncio.wait_for(event.wait(), 30)
                delays.append(time.perf_counter() - start)
            await client.logout()
            await runtime.stop()
            return delays
    finally:
        dovecot.cleanup()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sends, appends = (300, 30) if args.quick else (2000, 60)

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    from crm import db
    from tests.support.smtp import start_smtp

    smtp = start_smtp()
    smtp.bind_loop(asyncio.get_running_loop())
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite://{tmp}/bench.sqlite3"
        await db.init(url)
        await db.upgrade()
        try:
            print(f"SMTP: {sends} mails to {sends} recipients, local aiosmtpd, SQLite file")
            smtp.received.clear()
            bare = await bare_rate(smtp, sends)
            print(f"  baseline, bare aiosmtplib loop on one connection: {bare:8.0f} mails/s")
            smtp.received.clear()
            rate = await outbox_rate(url, smtp, sends)
            print(f"  through the outbox (commit, claim, send, record):  {rate:8.0f} mails/s "
                  f"= {rate / bare:.0%} of the baseline (goal >= 80%)")
            print(f"IMAP: APPEND to a real Dovecot → committed in the timeline, {appends} mails")
            delays = await idle_latency(url, appends)
            print(f"  p50 {percentile(delays, 50) * 1000:6.0f} ms   "
                  f"p99 {percentile(delays, 99) * 1000:6.0f} ms   "
                  f"max {max(delays) * 1000:6.0f} ms   mean "
                  f"{statistics.mean(delays) * 1000:6.0f} ms (goal: p99 < 2000 ms; "
                  "polling once a minute averages 30,000 ms)")
        finally:
            await db.close()
            smtp.stop()


if __name__ == "__main__":
    asyncio.run(main())
