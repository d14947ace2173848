"""Timers: a few APScheduler ticks that call core services. The database holds what is due."""

from __future__ import annotations

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from crm.services import Core


def build_scheduler(core: Core) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": AsyncIOExecutor()},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        timezone="UTC",
    )
    # Rows left 'sending' by a process that died go back to the queue once their lease is over.
    scheduler.add_job(core.dispatcher.requeue_expired, "interval",
                      seconds=max(5, int(core.settings.outbox.lease_seconds / 2)),
                      id="outbox.requeue_expired", replace_existing=True)
    return scheduler
