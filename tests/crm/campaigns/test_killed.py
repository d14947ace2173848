"""A campaign survives its process: the service (a child process, as `crm run`) is killed with
SIGKILL in the middle of a 5,000-recipient Telegram campaign, with sends in flight, and started
again: every recipient gets exactly one message.

The Bot API double holds the sends that come after the first 1,500 and, once the service is
dead, drops them (their connection is gone, as if they never reached Telegram). Everything the
double did answer was recorded as sent before the kill (the test waits for that), so the only
window in which a send can repeat (accepted by the channel, the process killed before it is
recorded, crm/dispatcher.py) is closed here and each message must arrive once. Paid broadcasts
keep it short (1,000 a second)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from crm.models import Campaign, Outbox
from crm.services import Core
from crm.types import CampaignState, Channel, OutboxState
from tests.crm.campaigns.conftest import many, spec
from tests.support import procs
from tests.support.telegram_double import TelegramDouble

ROOT = Path(__file__).resolve().parents[3]
FIRST = 20_000_000
COUNT = 5000


def _config(path: Path, db: str, tg: TelegramDouble) -> Path:
    path.write_text(
        f'[database]\nurl = "{db}"\n[http]\nport = {procs.free_port()}\n'
        "[outbox]\npoll_interval = 0.2\nlease_seconds = 5\n"
        '[logging]\nlevel = "WARNING"\nformat = "json"\n'
        f'[telegram]\ntoken = "{tg.token}"\napi_base_url = "{tg.base_url}"\npoll_timeout = 1\n'
        "paid_broadcast = true\npaid_broadcast_rate = 1000\n"
        '[campaigns]\ntick_seconds = 0.5\nquiet_hours = ""\n')
    return path


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CRM_TEST_RECEIVER": "http://127.0.0.1:9/unused",
           "PYTHONPATH": str(ROOT)}
    return procs.start([sys.executable, "-m", "tests.support.service", str(config)],
                       log_path=str(log), env=env, cwd=str(ROOT))


async def _until(check: object, timeout: float) -> None:
    """The other process commits; this one can only look at the tables."""
    async def poll() -> None:
        while not await check():  # type: ignore[operator]
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_killed_mid_send_and_restarted_each_gets_exactly_one(
        core: Core, db: str, tmp_path: Path, tg: TelegramDouble) -> None:
    await many(COUNT, Channel.TELEGRAM, FIRST)
    await core.segments.create("club", {"tag": "club"})
    campaign = await core.campaigns.create(
        spec(channels=["telegram"], telegram={"text": "Hi {{ customer.first_name }}"}),
        actor="test")
    await core.campaigns.schedule(campaign.id, actor="test")
    tg.hold_after = 1500
    config, log = _config(tmp_path / "c.toml", db, tg), tmp_path / "service.log"

    service = _start(config, log)
    try:
        await tg.wait_for(lambda: tg.held >= 5, timeout=120)

        async def answered_are_recorded() -> bool:
            return await Outbox.filter(state=OutboxState.SENT).count() >= 1500

        await _until(answered_are_recorded, 60)
        service.send_signal(signal.SIGKILL)
        service.wait(10)
    finally:
        procs.stop(service)
    assert await Campaign.filter(id=campaign.id, state=CampaignState.SENDING).exists()
    in_flight = await Outbox.filter(state=OutboxState.SENDING).count()
    assert in_flight >= 5  # the kill caught sends under way
    tg.release.set()
    await tg.wait_for(lambda: tg.dropped >= 5, timeout=30)
    tg.hold_after = None

    service = _start(config, log)
    try:
        async def finished() -> bool:
            return await Campaign.filter(id=campaign.id,
                                         state=CampaignState.FINISHED).exists()

        await _until(finished, 120)
    finally:
        procs.stop(service)
    got = Counter(s.chat_id for s in tg.sent if s.method == "sendMessage")
    assert set(got) == set(range(FIRST, FIRST + COUNT))
    assert [chat for chat, n in got.items() if n > 1] == []  # exactly once each
    stats = await core.campaigns.stats(campaign.id)
    assert stats.total.sent == COUNT and stats.total.failed == 0
