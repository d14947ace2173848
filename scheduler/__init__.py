"""Timers: a few APScheduler ticks that call core services. The database holds what is due.

Jobs (explicit ids, replace_existing, max_instances=1, coalesce):

- `outbox.requeue_expired` — rows left 'sending' by a dead process go back to the queue (every
  process runs it; it only touches expired leases).
- `tasks.tick` — every `[scheduler] tick_seconds`, and once at start: fire every due task (so
  what came due while the service was down fires now, once) and drain the routing queue.
- `tasks.next` — a one-shot timer re-armed to the next task's due time (on start, after each
  run, and whenever a task is written), so a reminder fires on time, not at the next tick.
- `routing.drain` — every `[routing] queue_check_seconds`: the queue's safety net.
- `reports.digest` — hourly, and once at start: the leader writes the next weekly digest's task
  row if it is not there (idempotent by its key; the row itself fires through `tasks.*`).
- `tasks.rearm` — PostgreSQL only, every 5 s: the leader re-arms `tasks.next` for tasks that
  other processes wrote (their TaskScheduled events stay in their own process).
- `campaigns.tick` — every `[campaigns] tick_seconds`, and once at start: the campaign
  engine (crm/campaigns/engine.py) starts what is due (or marks it missed after downtime),
  queues the next recipients in the bulk lane, records outcomes, picks A/B winners, finishes.

On PostgreSQL only the process holding the advisory lock (crm/leader.py) fires tasks and
drains the queue; the others try to take the lock at each tick.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from crm.automation import Automation, automation
from crm.leader import Leadership
from crm.services import Core
from crm.tasks import TaskScheduled

log = structlog.get_logger(__name__)


class CrmScheduler(AsyncIOScheduler):  # type: ignore[misc]
    """An AsyncIOScheduler that also lets go of the leader lock when it shuts down."""

    ticks: Ticks

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        self.ticks.leadership.terminate()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop starting jobs, let those under way finish, then shut down; a job still running
        after `grace` seconds is cancelled. Not cancelled at once: a job cut off inside a
        statement on PostgreSQL left its connection mid-query with the transaction's locks
        held (seen as the tests' TRUNCATE waiting forever after a tick was interrupted)."""
        self.pause()
        loop = asyncio.get_running_loop()
        running = [t for t in self.ticks.running if not t.done() and t.get_loop() is loop]
        try:
            if running:
                await asyncio.wait(running, timeout=grace)
        finally:
            self.shutdown(wait=False)


def _interruptible(job: Callable[[], Awaitable[object]],
                   running: weakref.WeakSet[asyncio.Task[Any]]
                   ) -> Callable[[], Awaitable[object]]:
    """A job cut short by shutdown ends quietly: its transaction rolled back, so the work is
    still pending and runs at the next start (APScheduler would log the cancellation as an
    error)."""

    @functools.wraps(job)
    async def run() -> object:
        task = asyncio.current_task()
        if task is not None:
            running.add(task)
        try:
            return await job()
        except asyncio.CancelledError:
            log.info("scheduler.job_interrupted", job=job.__name__)
            return 0
        finally:
            if task is not None:
                running.discard(task)

    return run


class Ticks:
    """What the jobs do; each checks leadership first."""

    def __init__(self, core: Core, scheduler: AsyncIOScheduler, leadership: Leadership) -> None:
        self.core = core
        self.auto: Automation = automation(core)
        self.scheduler = scheduler
        self.leadership = leadership
        # The jobs under way, so that a stop can wait for them (CrmScheduler.stop).
        self.running: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

    async def tick(self) -> int:
        if not await self.leadership.ensure():
            return 0
        fired = await self.fire_due()
        await self.auto.router.drain()
        return fired

    async def fire_due(self) -> int:
        if not await self.leadership.ensure():
            return 0
        fired = await self.auto.tasks.run_due()
        due = await self.auto.tasks.next_due()
        if due is not None:
            self.arm(due)
        return fired

    async def drain(self) -> int:
        if not await self.leadership.ensure():
            return 0
        return await self.auto.router.drain()

    def arm(self, due_at: datetime) -> None:
        """Set the one-shot timer to `due_at` unless it is already set sooner."""
        delay = max(0.0, (due_at - self.core.clock()).total_seconds())
        run_at = datetime.now(UTC) + timedelta(seconds=delay)
        job = self.scheduler.get_job("tasks.next")
        current = getattr(job, "next_run_time", None)  # absent until the scheduler starts
        if current is not None and current <= run_at:
            return
        self.scheduler.add_job(_interruptible(self.fire_due, self.running), "date",
                               run_date=run_at,
                               id="tasks.next", replace_existing=True, misfire_grace_time=None)

    async def on_scheduled(self, event: TaskScheduled) -> None:
        self.arm(event.due_at)

    async def digest(self) -> int:
        """The next weekly digest's row, written once (`[reports] digest`)."""
        if not await self.leadership.ensure():
            return 0
        return 1 if await self.auto.digest.ensure() is not None else 0

    async def campaigns(self) -> int:
        if not await self.leadership.ensure():
            return 0
        return await self.core.campaigns.engine.tick()

    async def rearm(self) -> int:
        """The leader looks for tasks written by other processes (their TaskScheduled events
        stay in their process), so those fire on time too, not at the next tick."""
        if not await self.leadership.ensure():
            return 0
        due = await self.auto.tasks.next_due()
        if due is not None:
            self.arm(due)
        return 0


def build_scheduler(core: Core) -> CrmScheduler:
    settings = core.settings
    scheduler = CrmScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": AsyncIOExecutor()},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        timezone="UTC",
    )
    leadership = Leadership(settings.database.url, settings.scheduler.lock_id)
    ticks = scheduler.ticks = Ticks(core, scheduler, leadership)
    core.bus.subscribe(TaskScheduled, ticks.on_scheduled, phase="after_commit")
    jobs: list[tuple[Any, str, dict[str, Any]]] = [
        # Rows left 'sending' by a process that died go back to the queue once their lease
        # is over.
        (_interruptible(core.dispatcher.requeue_expired, ticks.running),
         "outbox.requeue_expired",
         {"seconds": max(5, int(settings.outbox.lease_seconds / 2))}),
        (_interruptible(ticks.tick, ticks.running), "tasks.tick",
         {"seconds": settings.scheduler.tick_seconds, "next_run_time": datetime.now(UTC)}),
        (_interruptible(ticks.drain, ticks.running), "routing.drain",
         {"seconds": settings.routing.queue_check_seconds}),
        (_interruptible(ticks.campaigns, ticks.running), "campaigns.tick",
         {"seconds": settings.campaigns.tick_seconds, "next_run_time": datetime.now(UTC)}),
    ]
    if settings.reports.digest:
        jobs.append((_interruptible(ticks.digest, ticks.running), "reports.digest",
                     {"seconds": 3600, "next_run_time": datetime.now(UTC)}))
    if not settings.database.is_sqlite:  # one process on SQLite: its own events arm the timer
        jobs.append((_interruptible(ticks.rearm, ticks.running), "tasks.rearm", {"seconds": 5}))
    for func, job_id, trigger in jobs:
        scheduler.add_job(func, "interval", id=job_id, replace_existing=True, **trigger)
    return scheduler
