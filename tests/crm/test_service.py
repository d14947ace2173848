"""The service as a process: `crm run`, a kill -9 mid-send, restart, schema checks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from crm.models import Outbox
from crm.services import Core
from crm.types import Channel, InboundMessage, OutboxState
from tests.conftest import DB_KIND
from tests.support import procs

ROOT = Path(__file__).resolve().parents[2]
CRM = str(Path(sys.executable).parent / "crm")


def write_config(path: Path, db_url: str, port: int, **extra: str) -> Path:
    lines = [f'[database]\nurl = "{db_url}"\n', f"[http]\nport = {port}\n",
             "[outbox]\npoll_interval = 0.2\nlease_seconds = 5\nmax_in_flight = 5\n"
             "backoff_base = 0.1\nbackoff_max = 0.5\n",
             '[logging]\nlevel = "INFO"\nformat = "json"\n']
    lines += [f"{v}\n" for v in extra.values()]
    path.write_text("".join(lines))
    return path


class Receiver:
    """The far end of the HTTP test channel: counts deliveries, can hold them in flight."""

    def __init__(self, answer_first: int) -> None:
        self.answer_first = answer_first
        self.got: Counter[str] = Counter()
        self.answered: list[str] = []
        self.held: set[str] = set()
        self.release = asyncio.Event()
        self.changed = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        address = body["address"]
        self.got[address] += 1
        if len(self.answered) >= self.answer_first and not self.release.is_set():
            self.held.add(address)
            await self._notify()
            await self.release.wait()
        self.answered.append(address)
        await self._notify()
        return web.json_response({"ok": True})

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait(self, predicate: object, timeout: float = 30) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    recv = Receiver(answer_first=10)
    app = web.Application()
    app.router.add_post("/send", recv.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    port = procs.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield recv, f"http://127.0.0.1:{port}/send"
    recv.release.set()
    await runner.cleanup()


def start_service(config: Path, receiver_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CRM_TEST_RECEIVER": receiver_url, "PYTHONPATH": str(ROOT)}
    return procs.start([sys.executable, "-m", "tests.support.service", str(config)],
                       log_path=str(log), env=env, cwd=str(ROOT))


async def wait_sent(count: int, timeout: float = 30) -> None:
    """The other process commits; we can only look at the table."""
    async def poll() -> None:
        while await Outbox.filter(state=OutboxState.SENT).count() < count:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_kill_9_mid_send_loses_nothing_and_resends_only_in_flight(
        core: Core, db: str, tmp_path: Path, receiver: tuple[Receiver, str]) -> None:
    recv, url = receiver
    for n in range(40):
        result = await core.timeline.ingest(
            InboundMessage(Channel.TEST, f"k-{n}", f"addr-{n}", text="hi"))
        await core.conversations.send(result.customer_id, f"reply {n}")
    port = procs.free_port()
    config = write_config(tmp_path / "c.toml", db, port)
    log = tmp_path / "service.log"

    service = start_service(config, url, log)
    try:
        await wait_sent(10)  # ten recorded as sent…
        await recv.wait(lambda: len(recv.held) >= 3)  # …and more in flight, held by us
        service.send_signal(signal.SIGKILL)
        service.wait(10)
    finally:
        procs.stop(service)
    sent_before_kill = set(await Outbox.filter(state=OutboxState.SENT).values_list(
        "address", flat=True))
    assert len(sent_before_kill) >= 10

    recv.release.set()
    service = start_service(config, url, log)
    try:
        await wait_sent(40, timeout=60)
    finally:
        procs.stop(service)

    assert set(recv.got) == {f"addr-{n}" for n in range(40)}  # nothing lost
    twice = {a for a, c in recv.got.items() if c > 1}
    assert not twice & sent_before_kill  # nothing recorded as sent went again
    assert twice <= recv.held  # only sends caught in flight by the kill were repeated
    assert await Outbox.exclude(state=OutboxState.SENT).count() == 0


async def test_crm_run_serves_and_stops_on_sigterm(new_db_url: object, tmp_path: Path) -> None:
    port = procs.free_port()
    config = write_config(tmp_path / "c.toml", new_db_url(), port)  # type: ignore[operator]
    if DB_KIND == "postgres":
        done = subprocess.run([CRM, "db", "upgrade", "-c", str(config)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    log = tmp_path / "run.log"
    proc = procs.start([CRM, "run", "-c", str(config)], log_path=str(log))
    try:
        await asyncio.to_thread(procs.wait_port, port, proc, 30, str(log))
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/healthz") as r:
            body = await r.json()
            assert r.status == 200, body
        assert body["database"]["state"] == "up"
        assert body["channels"]["telegram"]["state"] == "off"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 10) == 0
    finally:
        procs.stop(proc)
    text = log.read_text()
    assert '"event": "crm.stopped"' in text
    assert "\"event\": \"channel.off\"" in text and "to turn it on" in text


async def test_old_schema_is_refused_with_what_to_run(new_db_url: object,
                                                      tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", new_db_url(),  # type: ignore[operator]
                          procs.free_port())
    if DB_KIND == "sqlite":  # SQLite upgrades itself unless told not to
        text = config.read_text().replace("[database]\n", "[database]\nauto_upgrade = false\n")
        config.write_text(text)
    done = subprocess.run([CRM, "run", "-c", str(config)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "pending migration" in done.stderr and "crm db upgrade" in done.stderr
    done = subprocess.run([CRM, "db", "status", "-c", str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "0001_initial" in done.stdout
    done = subprocess.run([CRM, "db", "upgrade", "-c", str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "up to date" in done.stdout


@pytest.mark.parametrize("bad", ['[http]\nport = "x"\n', "[nope]\n"])
def test_crm_run_with_bad_config_exits_nonzero(tmp_path: Path, bad: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(bad)
    done = subprocess.run([CRM, "run", "-c", str(config)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert f"{config}:" in done.stderr
