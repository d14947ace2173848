"""Scheduled work as rows: reminders, follow-ups, surveys, deadline checks.

A task fires in one transaction that both claims it (`UPDATE … WHERE state = 'pending'`) and
writes its effects (outbox rows, team notices, timeline entries). So a task fires at most once
even with several processes (the second UPDATE finds it done) and at least once across restarts
(a crash before the commit leaves it pending). APScheduler is only the timer (scheduler/).

Missed while the service was down: on start every task already due fires once, oldest first;
each kind decides whether it is still meaningful (crm/followups.py, crm/deadlines.py):
reminders always fire (marked late), follow-ups and surveys are skipped past their late limit,
a deadline warning whose deadline has passed is skipped in favour of the missed-deadline check.
A task that raises is retried with backoff; a `CrmError` (no address, customer gone) fails it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from tortoise.expressions import F

from crm.clock import Clock, utcnow
from crm.errors import CrmError
from crm.events import EventBus
from crm.models import Task
from crm.types import TaskKind, TaskState

log = structlog.get_logger(__name__)

Handler = Callable[[Task, datetime], Awaitable[TaskState]]


@dataclass(frozen=True, slots=True)
class TaskScheduled:
    """A task was written; the scheduler re-arms its timer if this one is due sooner."""

    task_id: int
    due_at: datetime


def retry_delay(attempts: int) -> timedelta:
    """Backoff after a failed run: 30 s, 1 min, 2 min, … at most an hour."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def is_late(task: Task, now: datetime, limit: timedelta) -> bool:
    """Due longer ago than `limit` (missed while the service was down)."""
    return now - task.due_at > limit


class Tasks:
    def __init__(self, bus: EventBus, clock: Clock = utcnow, max_attempts: int = 5) -> None:
        self.bus = bus
        self.clock = clock
        self.max_attempts = max_attempts
        self._handlers: dict[TaskKind, Handler] = {}

    def handle(self, kind: TaskKind, handler: Handler) -> None:
        self._handlers[kind] = handler

    async def schedule(self, kind: TaskKind, due_at: datetime, *, key: str,
                       customer_id: int | None = None, conversation_id: int | None = None,
                       manager_id: int | None = None, text: str = "",
                       payload: dict[str, object] | None = None,
                       created_by: str = "system") -> Task:
        """Write a task (idempotent by `key`); call inside the unit of work of its cause."""
        async with self.bus.unit_of_work():
            existing = await Task.get_or_none(key=key)
            if existing is not None:
                return existing
            task = await Task.create(kind=kind, due_at=due_at, key=key, customer_id=customer_id,
                                     conversation_id=conversation_id, manager_id=manager_id,
                                     text=text, payload=payload or {}, created_by=created_by)
            await self.bus.emit(TaskScheduled(task.id, due_at))
            return task

    async def cancel(self, kinds: Iterable[TaskKind], *, conversation_id: int | None = None,
                     customer_id: int | None = None, manager_id: int | None = None,
                     reason: str = "") -> int:
        query = Task.filter(state=TaskState.PENDING, kind__in=list(kinds))
        if conversation_id is not None:
            query = query.filter(conversation_id=conversation_id)
        if customer_id is not None:
            query = query.filter(customer_id=customer_id)
        if manager_id is not None:
            query = query.filter(manager_id=manager_id)
        return await query.update(state=TaskState.CANCELLED, done_at=self.clock(),
                                  last_error=reason[:500] or None)

    async def next_due(self) -> datetime | None:
        task = await Task.filter(state=TaskState.PENDING).order_by("due_at").first()
        return task.due_at if task else None

    async def pending(self, manager_id: int | None = None, *, limit: int = 200) -> list[Task]:
        query = Task.filter(state=TaskState.PENDING)
        if manager_id is not None:
            query = query.filter(manager_id=manager_id)
        return await query.order_by("due_at", "id").limit(limit)

    async def run_due(self, limit: int = 200) -> int:
        """Fire every due task, oldest first; returns how many fired."""
        fired = 0
        while True:
            now = self.clock()
            due = await Task.filter(state=TaskState.PENDING, due_at__lte=now).order_by(
                "due_at", "id").limit(limit).values_list("id", flat=True)
            for task_id in due:
                fired += await self.fire(int(task_id))  # type: ignore[call-overload]
            if len(due) < limit:
                return fired

    async def fire(self, task_id: int) -> bool:
        """Claim and run one task with its effects in one transaction."""
        now = self.clock()
        try:
            async with self.bus.unit_of_work():
                claimed = await Task.filter(id=task_id, state=TaskState.PENDING).update(
                    state=TaskState.DONE, done_at=now, attempts=F("attempts") + 1)
                if not claimed:
                    return False  # another process (or an earlier pass) fired it
                task = await Task.get(id=task_id)
                handler = self._handlers.get(task.kind)
                if handler is None:
                    raise CrmError(f"no handler for {task.kind.value} tasks")
                state = await handler(task, now)
                if state is not TaskState.DONE:
                    await Task.filter(id=task_id).update(state=state)
            log.info("task.fired", task_id=task_id, kind=task.kind.value, state=state.value)
            return state is TaskState.DONE
        except Exception as e:
            await self._failed(task_id, e, now)
            return False

    async def _failed(self, task_id: int, error: Exception, now: datetime) -> None:
        task = await Task.get_or_none(id=task_id)
        if task is None or task.state is not TaskState.PENDING:
            return
        attempts = task.attempts + 1
        final = isinstance(error, CrmError) or attempts >= self.max_attempts
        reason = f"{type(error).__name__}: {error}"[:500]
        if final:
            log.error("task.failed", task_id=task_id, kind=task.kind.value, error=reason)
            await Task.filter(id=task_id).update(state=TaskState.FAILED, attempts=attempts,
                                                 last_error=reason, done_at=now)
        else:
            log.warning("task.retry", task_id=task_id, kind=task.kind.value, error=reason,
                        attempts=attempts, exc_info=error)
            await Task.filter(id=task_id).update(attempts=attempts, last_error=reason,
                                                 due_at=now + retry_delay(attempts))


class TaskRecords:
    """A customer's tasks follow the customer: moved on merge, exported, erased by forget."""

    model = Task

    async def move(self, source_id: int, target_id: int) -> dict[str, int]:
        return {"tasks": await Task.filter(customer_id=source_id).update(customer_id=target_id)}

    async def export(self, customer_id: int) -> dict[str, Any]:
        rows = await Task.filter(customer_id=customer_id).order_by("id")
        return {"tasks": [{"id": t.id, "kind": t.kind.value, "state": t.state.value,
                           "due_at": t.due_at.isoformat(), "text": t.text,
                           "created_by": t.created_by,
                           "created_at": t.created_at.isoformat()} for t in rows]}

    async def forget(self, customer_id: int) -> dict[str, int]:
        """Pending work about the customer is cancelled; what a manager wrote about them goes."""
        cancelled = await Task.filter(customer_id=customer_id, state=TaskState.PENDING).update(
            state=TaskState.CANCELLED, last_error="the customer's data was erased")
        await Task.filter(customer_id=customer_id).update(text="", payload={})
        return {"tasks_cancelled": cancelled}
