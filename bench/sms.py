"""Outbound SMS per second through the outbox to a local Kannel, every message accounted for.

    .venv/bin/python bench/sms.py                      # 1,000 SMS at rate_per_second = 100
    .venv/bin/python bench/sms.py --messages 200 --rate 10

Starts a real Kannel (bearerbox + smsbox, with this script as the SMSC over the fake-SMSC line
protocol), queues N replies to N customers through `Conversations.send` (SQLite file database),
then starts the service and measures from the start until the last delivery report has marked
its message delivered. Printed beside it: the configured `[sms] rate_per_second`, and a baseline
measured in the same run: the same number of sendsms requests straight to Kannel, without the
CRM (same concurrency cap as the dispatcher). Every message must be accounted for: sent once to
the network, and delivered by a DLR.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/email.py would shadow the standard library's `email` (aiohttp imports it).
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

TOKEN = "bench-inbound-token-0123456789"
OUR_NUMBER = "+15550100"


def number(n: int) -> str:
    return f"+1202555{n:04d}"


async def baseline(kannel: object, messages: int, concurrency: int) -> float:
    import aiohttp

    from tests.support.kannel import PASSWORD, USERNAME

    url = kannel.sendsms_url  # type: ignore[attr-defined]
    limit = asyncio.Semaphore(concurrency)

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        async with limit, session.get(url, params={
                "username": USERNAME, "password": PASSWORD, "from": OUR_NUMBER,
                "to": number(5000 + n), "text": f"baseline {n}", "charset": "UTF-8",
                "coding": "0", "dlr-mask": "31"}) as response:
            assert response.status == 202, await response.text()

    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        await asyncio.gather(*(one(session, n) for n in range(messages)))
        return messages / (time.perf_counter() - start)


async def run(messages: int, rate: float, tmp: str) -> None:
    from crm import db
    from crm.app import App
    from crm.config import parse_settings
    from crm.events import DeliveryChanged
    from crm.models import Message
    from crm.services import Core
    from crm.types import Channel, DeliveryStatus, InboundMessage
    from tests.support import procs
    from tests.support.kannel import PASSWORD, USERNAME, FakeSmsc, start_kannel

    if messages > 5000:
        raise SystemExit("at most 5,000 messages (distinct test numbers)")
    port = procs.free_port()
    kannel = start_kannel(port, TOKEN)
    smsc = FakeSmsc()
    try:
        await smsc.connect(kannel.smsc_port)
        url = f"sqlite://{tmp}/bench.sqlite3"
        settings = parse_settings({
            "database": {"url": url},
            "http": {"port": port, "public_url": f"http://127.0.0.1:{port}"},
            "outbox": {"poll_interval": 0.2},
            "logging": {"level": "WARNING"},
            "sms": {"provider": "kannel", "inbound_token": TOKEN, "rate_per_second": rate,
                    "kannel": {"sendsms_url": kannel.sendsms_url, "username": USERNAME,
                               "password": PASSWORD, "sender": OUR_NUMBER}}})
        await db.init(url)
        await db.upgrade()
        core = Core.build(settings)
        for n in range(messages):
            result = await core.timeline.ingest(InboundMessage(
                Channel.SMS, f"bench-in-{n}", number(n), text="hello"))
            await core.conversations.send(result.customer_id, f"Reply number {n}: thanks!")

        delivered: set[int] = set()
        done = asyncio.Event()

        async def on_delivery(event: DeliveryChanged) -> None:
            if event.status is DeliveryStatus.DELIVERED and event.message_id is not None:
                delivered.add(event.message_id)
                if len(delivered) >= messages:
                    done.set()

        app = App(settings, manage_database=False, builtin_channels=True)
        start = time.perf_counter()
        async with app:
            assert app.core is not None
            app.core.bus.subscribe(DeliveryChanged, on_delivery)
            await asyncio.wait_for(done.wait(), timeout=messages / rate * 3 + 30)
            elapsed = time.perf_counter() - start
        at_network = [m for m in smsc.received if m.text.startswith("Reply number")]
        in_db = await Message.filter(channel=Channel.SMS, direction="out",
                                     delivery_status=DeliveryStatus.DELIVERED).count()
        await db.close()
        crm_rate = messages / elapsed
        base = await baseline(kannel, messages, settings.outbox.max_in_flight)
        print(f"sms: {messages:,} messages through the outbox to Kannel (fake SMSC), SQLite")
        print(f"{'configured rate':>16} {'CRM msg/s':>10} {'share of rate':>14} "
              f"{'raw sendsms msg/s':>18}")
        print(f"{rate:16.0f} {crm_rate:10.1f} {crm_rate / rate:14.0%} {base:18.1f}")
        print(f"accounted for: {len(at_network):,} reached the network "
              f"({len({m.receiver for m in at_network}):,} distinct), "
              f"{len(delivered):,} DLRs delivered, {in_db:,} delivered in the database")
        if not (len(at_network) == len(delivered) == in_db == messages):
            raise SystemExit("NOT every message was accounted for")
    finally:
        await smsc.close()
        kannel.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="[sms] rate_per_second")
    args = parser.parse_args()
    from crm import logs

    level = os.environ.get("BENCH_LOG", "")  # e.g. BENCH_LOG=DEBUG to see the service's log
    logs.setup(level or "ERROR", "console")
    if not level:
        logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="crm-bench-sms-") as tmp:
        os.chmod(tmp, 0o755)
        asyncio.run(run(args.messages, args.rate, tmp))


if __name__ == "__main__":
    main()
