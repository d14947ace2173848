"""Campaigns: a 100,000-recipient Telegram campaign, paid broadcasts, and 20,000 mails.

    .venv/bin/python bench/campaign.py [--quick]

Everything runs on loopback, on a SQLite file, each figure printed beside its ceiling or its
baseline measured in the same run:

1. Telegram at Telegram's real limits (the Bot API double of tests/support/telegram_double.py:
   30 messages a second per bot, 429 past it, in a process of its own as Telegram is not in
   ours), the whole service (crm.app.App with python-telegram-bot) and a campaign to 100,000
   customers:
   - the time to expand the segment into its 100,000 recipients (goal: under 10 s);
   - the rate reached as a share of the 30/s ceiling, over the first 10,000 messages (at 30/s
     the whole campaign would take 55 minutes; --quick: 1,500) (goal: at least 95%);
   - the service's peak memory (the process's peak RSS) (goal: under 300 MB);
   - duplicates (a chat with two messages) and losses (a message recorded as sent that the
     double never got, or the other way round) once the campaign is cancelled (goal: zero).
2. Paid broadcasts against the double at 1,000/s: 20,000 messages (--quick: 3,000), the rate as
   a share of the 1,000/s ceiling (goal: at least 90%).
3. 20,000 mails (--quick: 2,000) to a local aiosmtpd through the campaign (the engine, the bulk
   lane, the SMTP sender) beside a bare aiosmtplib loop sending the same composed mails on one
   connection (goal: at least 80%), and CPU seconds per 1,000 mails for both.
"""

from __future__ import annotations

import sys

# bench/email.py would shadow the standard library's `email` for scripts run from bench/.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST = 10_000_000  # chat ids of the campaign's recipients
TEXT = "Hi {{ customer.first_name }}, spring is here: -20% until Sunday"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def serve_double() -> None:
    """The child process: the Bot API double, and a second port from which the bench reads
    what it received (chat id and arrival time of each message, from an index on)."""
    from aiohttp import web

    from tests.support.telegram_double import TelegramDouble

    double = await TelegramDouble().start()

    async def state(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.json_response({
            "sent": [[s.chat_id, s.at] for s in double.sent[since:]],
            "429": sum(1 for r in double.rejected if r[1] == 429), "paid": double.paid_sent})

    app = web.Application()
    app.router.add_get("/state", state)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"token": double.token, "base_url": double.base_url, "state": port}),
          flush=True)
    await asyncio.Event().wait()


@dataclass
class RemoteDouble:
    """The bench's view of the double in its own process (its clock is the same monotonic one:
    arrival times compare with each other, which is all the rates need)."""

    token: str
    base_url: str
    state_url: str
    process: asyncio.subprocess.Process
    sent: list[tuple[int, float]] = field(default_factory=list)
    rejected_429: int = 0
    paid_sent: int = 0

    @classmethod
    async def start(cls) -> RemoteDouble:
        from tests.support.procs import _die_with_parent

        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve-double", stdout=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent)
        assert process.stdout is not None
        said = json.loads(await process.stdout.readline())
        return cls(said["token"], said["base_url"], f"http://127.0.0.1:{said['state']}/state",
                   process)

    async def refresh(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.get(
                self.state_url, params={"since": str(len(self.sent))}) as response:
            state = await response.json()
        self.sent += [(int(chat), float(at)) for chat, at in state["sent"]]
        self.rejected_429, self.paid_sent = int(state["429"]), int(state["paid"])

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            await self.refresh()
            if predicate():
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the double did not get there in time")
            await asyncio.sleep(0.25)

    async def stop(self) -> None:
        self.process.kill()
        await self.process.wait()


async def telegram(tmp: str, count: int, measured: int, paid: bool) -> dict[str, Any]:
    from crm import db
    from crm.app import App, _telegram
    from crm.campaigns.engine import CampaignEngine
    from crm.config import parse_settings
    from crm.errors import CrmError
    from crm.models import CampaignRecipient, Outbox
    from crm.types import Channel, OutboxState
    from tests.crm.campaigns.conftest import many, spec

    double = await RemoteDouble.start()
    url = f"sqlite://{tmp}/{'paid' if paid else 'free'}.sqlite3"
    await db.init(url)
    await db.upgrade()
    settings = parse_settings({
        "database": {"url": url}, "http": {"port": 0},
        "telegram": {"token": double.token, "api_base_url": double.base_url, "poll_timeout": 2,
                     "paid_broadcast": paid, "paid_broadcast_rate": 1000},
        "campaigns": {"quiet_hours": "", "tick_seconds": 0.5}})
    expansion: list[float] = []
    expand = CampaignEngine.expand

    async def timed(self: Any, *args: Any) -> int:
        start = time.perf_counter()
        try:
            return await expand(self, *args)
        finally:
            expansion.append(time.perf_counter() - start)

    CampaignEngine.expand = timed  # type: ignore[method-assign]
    try:
        async with App(settings, extra_channels=[_telegram], builtin_channels=False,
                       manage_database=False) as app:
            core = app.core
            assert core is not None
            await many(count, Channel.TELEGRAM, FIRST)
            await core.segments.create("all", {"tag": "club"})
            campaign = await core.campaigns.create(
                spec(segment="all", channels=["telegram"], telegram={"text": TEXT}),
                actor="bench")
            gc.collect()
            gc.freeze()  # see bench/lanes.py: a full collection stalls the shared loop
            await core.campaigns.schedule(campaign.id, actor="bench")

            def sent() -> list[float]:
                return [at for chat, at in double.sent if chat >= FIRST]

            warm = min(measured // 10, 1000)
            await double.wait_for(lambda: len(double.sent) >= warm, timeout=600)
            start = sent()[warm - 1]
            await double.wait_for(lambda: len(double.sent) >= measured, timeout=3600)
            end = sent()[measured - 1]
            rate = (measured - warm) / (end - start)
            peak = rss_mb()
            with contextlib.suppress(CrmError):  # all measured were all there were: finished
                await core.campaigns.cancel(campaign.id, actor="bench")
            while await Outbox.filter(state=OutboxState.SENDING).exists():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            await double.refresh()
            got = Counter(chat for chat, _at in double.sent if chat >= FIRST)
            recorded = {int(a) for a in await Outbox.filter(state=OutboxState.SENT)
                        .values_list("address", flat=True)}
            recipients = await CampaignRecipient.filter(campaign_id=campaign.id).count()
            gc.unfreeze()
        return {"rate": rate, "expand": expansion[0] if expansion else float("nan"),
                "rss": peak, "recipients": recipients,
                "duplicates": sum(1 for n in got.values() if n > 1),
                "losses": len(recorded ^ set(got)), "delivered": len(got),
                "429": double.rejected_429, "paid": double.paid_sent}
    finally:
        CampaignEngine.expand = expand  # type: ignore[method-assign]
        await db.close()
        await double.stop()


async def mails(tmp: str, count: int) -> dict[str, float]:
    import aiosmtplib
    from tortoise.connection import get_connection

    from channels.email.compose import compose
    from channels.email.sender import SmtpSender
    from crm import db, sql
    from crm.campaigns.render import Person
    from crm.clock import utcnow
    from crm.config import parse_settings
    from crm.events import CampaignFinished
    from crm.services import Core
    from crm.types import Channel
    from tests.crm.campaigns.conftest import many, spec
    from tests.support.smtp import start_smtp

    smtp = start_smtp()
    smtp.bind_loop(asyncio.get_running_loop())
    url = f"sqlite://{tmp}/mail.sqlite3"
    await db.init(url)
    await db.upgrade()
    settings = parse_settings({
        "database": {"url": url}, "outbox": {"max_in_flight": 100},
        "campaigns": {"quiet_hours": "", "tick_seconds": 0.2},
        "email": {"imap_host": "127.0.0.1", "imap_username": "x@example.com",
                  "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
                  "from_address": "news@example.com", "smtp_rate_per_second": 100000}})
    core = Core.build(settings)
    ids = await many(count, Channel.EMAIL, 0)
    await sql.execute(get_connection("default"), "UPDATE identity SET address = 'c' || "
                      "CAST(customer_id AS TEXT) || '@example.org' WHERE channel = 'email'")
    await core.segments.create("all", {"tag": "club"})
    campaign = await core.campaigns.create(spec(segment="all", channels=["email"]),
                                           actor="bench")
    # The same mail, composed by the same code, for the baseline.
    _spec, renderer = await core.campaigns.engine.prepared(campaign)

    messages = [renderer.message(Channel.EMAIL, "A", Person(cid, f"Customer {cid}"), cid,
                                 f"c{cid}@example.org") for cid in ids]
    smtp.received.clear()
    cpu, start = time.process_time(), time.perf_counter()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port, start_tls=False)
    await client.connect()
    for n, message in enumerate(messages):
        mail = compose(message, from_address="news@example.com", from_name="",
                       now=utcnow(), message_id=f"b{n}@example.com", default_subject="x",
                       unsubscribe_mailbox="news+unsubscribe@example.com")
        await client.send_message(mail, sender="news@example.com", recipients=[message.address])
    await client.quit()
    await smtp.wait_total(count)
    bare = count / (time.perf_counter() - start)
    bare_cpu = (time.process_time() - cpu) / count * 1000
    del messages

    smtp.received.clear()
    sender = SmtpSender(settings.email)
    core.dispatcher.register(sender)
    finished = asyncio.Event()

    async def done(_event: CampaignFinished) -> None:
        finished.set()

    core.bus.subscribe(CampaignFinished, done)
    await core.dispatcher.start(single_process=True)

    async def ticks() -> None:
        while True:
            await core.campaigns.engine.tick()
            await asyncio.sleep(0.2)

    cpu, start = time.process_time(), time.perf_counter()
    await core.campaigns.schedule(campaign.id, actor="bench")
    ticker = asyncio.create_task(ticks())
    await smtp.wait_total(count, timeout=3600)
    rate = count / (time.perf_counter() - start)
    campaign_cpu = (time.process_time() - cpu) / count * 1000
    await asyncio.wait_for(finished.wait(), 60)
    ticker.cancel()
    await core.dispatcher.stop()
    await sender.close()
    await db.close()
    smtp.stop()
    return {"bare": bare, "rate": rate, "bare_cpu": bare_cpu, "cpu": campaign_cpu}


async def main(quick: bool) -> None:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    count, measured = 100_000, (1_500 if quick else 10_000)
    paid_count = 3_000 if quick else 20_000
    mail_count = 2_000 if quick else 20_000
    with tempfile.TemporaryDirectory(prefix="bench-campaign-") as tmp:
        free = await telegram(tmp, count, measured, paid=False)
        print(f"Telegram, {count:,} recipients, the double at its real 30/s:")
        print(f"  segment expansion: {free['expand']:.2f} s for {free['recipients']:,} "
              "recipients on SQLite (goal < 10 s)")
        print(f"  rate over the first {measured:,}: {free['rate']:.2f} msg/s = "
              f"{free['rate'] / 30 * 100:.1f}% of the 30/s ceiling (goal >= 95%); "
              f"429s answered: {free['429']}")
        print(f"  peak RSS of the service's process: {free['rss']:.0f} MB "
              "(goal < 300 MB)")
        print(f"  after cancelling at {free['delivered']:,} delivered: duplicates "
              f"{free['duplicates']}, losses {free['losses']} (goal: 0 and 0)")
        paid = await telegram(tmp, paid_count, paid_count, paid=True)
        print(f"Telegram paid broadcast, {paid_count:,} recipients, the double at 1,000/s:")
        print(f"  rate: {paid['rate']:.0f} msg/s = {paid['rate'] / 1000 * 100:.1f}% of the "
              f"1,000/s ceiling (goal >= 90%); flagged {paid['paid']:,}; 429s {paid['429']}; "
              f"duplicates {paid['duplicates']}, losses {paid['losses']}")
        mail = await mails(tmp, mail_count)
        print(f"Email, {mail_count:,} mails to a local aiosmtpd:")
        print(f"  baseline, bare aiosmtplib loop on one connection: {mail['bare']:6.0f} mails/s,"
              f" {mail['bare_cpu']:.2f} CPU s per 1,000")
        print(f"  the campaign (engine, bulk lane, SMTP sender):    {mail['rate']:6.0f} mails/s"
              f" = {mail['rate'] / mail['bare'] * 100:.0f}% of the baseline (goal >= 80%), "
              f"{mail['cpu']:.2f} CPU s per 1,000")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,500 measured of 100,000; 3,000 paid; 2,000 mails (a few minutes)")
    parser.add_argument("--serve-double", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(serve_double() if args.serve_double else main(args.quick))
