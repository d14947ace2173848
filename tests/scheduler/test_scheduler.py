"""The scheduler: its jobs, its timer, and one leader among several processes (PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm.app import App
from crm.leader import Leadership, asyncpg_dsn
from crm.models import Task
from crm.services import Core
from crm.types import TaskKind, TaskState
from scheduler import build_scheduler
from tests.conftest import DB_KIND, make_settings
from tests.support import procs
from tests.support.automation import Notices, build, manager
from tests.support.clock import TravelClock
from tests.support.fake_channel import FakeRuntime, FakeSender
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def test_dsn_drops_tortoise_options() -> None:
    assert asyncpg_dsn("postgres://u:p@h:5432/crm?maxsize=5") == "postgresql://u:p@h:5432/crm"


async def test_jobs_have_ids_one_instance_and_coalesce(db: str) -> None:
    core = Core.build(make_settings(db))
    scheduler = build_scheduler(core)
    soon = core.clock() + timedelta(minutes=5)
    scheduler.ticks.arm(soon + timedelta(hours=1))
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        expected = {"outbox.requeue_expired", "tasks.tick", "routing.drain", "tasks.next",
                    "campaigns.tick"}
        if DB_KIND == "postgres":  # several processes: the leader also looks for others' tasks
            expected.add("tasks.rearm")
        assert set(jobs) == expected
        assert all(j.max_instances == 1 and j.coalesce for j in jobs.values())
        # The timer follows the soonest due task.
        scheduler.ticks.arm(soon)
        scheduler.ticks.arm(soon + timedelta(hours=2))
        run_at = scheduler.get_job("tasks.next").next_run_time
        assert abs((run_at - datetime.now(UTC)) - timedelta(minutes=5)) < timedelta(seconds=30)
    finally:
        await scheduler.stop()
        await asyncio.sleep(0)


async def test_the_weekly_digest_has_its_job_and_writes_its_row(db: str) -> None:
    core = Core.build(make_settings(db, reports={"digest": True}))
    scheduler = build_scheduler(core)
    scheduler.start(paused=True)
    try:
        assert scheduler.get_job("reports.digest") is not None
        assert await scheduler.ticks.digest() == 1
        assert await scheduler.ticks.digest() == 1  # the same row, not another
        assert await Task.filter(kind=TaskKind.REPORT_DIGEST).count() == 1
    finally:
        await scheduler.stop()
        await asyncio.sleep(0)
        await scheduler.ticks.leadership.close()


async def test_a_reminder_missed_while_down_fires_once_at_start(db: str) -> None:
    clock = TravelClock()
    _core, auto = build(db, clock)
    ann = await manager("Ann")
    await auto.commands.remind(ann, None, "1h renew the domain", clock())
    clock.advance(hours=5)  # the service was down when it came due
    found: dict[str, Notices] = {}

    def fake_channel(core: Core, web_app: object) -> FakeRuntime:
        found["notices"] = Notices(core)
        return FakeRuntime(FakeSender())

    async with App(make_settings(db), clock=clock, extra_channels=[fake_channel],
                   builtin_channels=False, manage_database=False):
        [notice] = await found["notices"].wait("reminder")
    assert notice.manager_id == ann.id and "renew the domain" in notice.text
    assert "late because the service was down" in notice.text
    assert await Task.filter(kind=TaskKind.REMINDER, state=TaskState.DONE).count() == 1


async def test_one_leader_fires_and_another_takes_over(db: str, pg_server: PostgresServer) -> None:
    lock_url = pg_server.url(pg_server.create_database("lock"))
    clock = TravelClock()
    processes = [build(db, clock) for _ in range(2)]
    notices = [Notices(core) for core, _ in processes]
    schedulers = [build_scheduler(core) for core, _ in processes]
    for s in schedulers:  # the lock on a PostgreSQL server, whatever the tasks' database
        s.ticks.leadership = Leadership(lock_url, 4242)
    first, second = (s.ticks for s in schedulers)
    try:
        ann = await manager("Ann")
        auto = processes[0][1]
        await auto.commands.remind(ann, None, "1h first", clock())
        clock.advance(hours=1)
        await first.tick()  # up first: takes the lock
        await second.tick()
        assert first.leadership.leading and not second.leadership.leading
        assert [len(n.of("reminder")) for n in notices] == [1, 0]

        first.leadership.terminate()  # the leader's process dies: its connection closes
        await _lock_released(lock_url, 4242)  # once the server has noticed
        await auto.commands.remind(ann, None, "1h second", clock())
        clock.advance(hours=1)
        await asyncio.gather(first.tick(), second.tick())
        assert second.leadership.leading
        assert sum(len(n.of("reminder")) for n in notices) == 2
        assert "second" in notices[1].of("reminder")[0].text
    finally:
        for s in schedulers:
            await s.ticks.leadership.close()


async def _lock_released(url: str, lock_id: int) -> None:
    """Wait until the server has let go of an advisory lock whose holder's connection dropped
    (its backend notices the closed socket a moment later, in another process)."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for _ in range(500):
            if not await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = "
                                       "'advisory' AND objid = $1", lock_id):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"advisory lock {lock_id} still held")
    finally:
        await conn.close()


async def _line(proc: asyncio.subprocess.Process, want: str) -> None:
    assert proc.stdout is not None
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert raw, f"the process exited before saying {want!r}"
        if raw.decode().strip() == want:
            return


async def test_two_processes_one_leader_and_takeover_after_kill(pg_server: PostgresServer) -> None:
    url = pg_server.url(pg_server.create_database("lock"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    async def spawn() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.scheduler.lock_holder", url, "4343", cwd=ROOT,
            env=env, stdout=asyncio.subprocess.PIPE, preexec_fn=procs._die_with_parent)

    one = await spawn()
    two: Any = None
    try:
        await _line(one, "leading")
        two = await spawn()
        await _line(two, "following")
        one.send_signal(signal.SIGKILL)  # kill -9: no goodbye, PostgreSQL frees the lock
        await one.wait()
        await _line(two, "leading")
    finally:
        for proc in (one, two):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
