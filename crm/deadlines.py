"""Response deadlines: set when a customer waits, warned before, flagged and reassigned after.

A new conversation gets a first-response deadline (`[routing] first_response_minutes`); a
customer who writes again after our answer gets a next-response deadline (`[sla]
next_response_minutes`); both count business hours only (crm/sla.py). Each deadline is two task
rows: a warning `remind_before_minutes` ahead to the assignee, and the check at the deadline that
flags the conversation to the team and, with `reassign_on_miss`, gives it to another manager who
can take it (nobody else: it stays). A manager's reply, or a message sent through the API,
clears the deadline and cancels both (crm/conversations.py ANSWERING).
A conversation whose deadline was missed gets a new one when it is reassigned (by the miss
itself, from the queue or by hand): the new assignee has the full time again, and is warned.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from crm.clock import to_ms
from crm.events import TeamNotice
from crm.i18n import Phrase
from crm.models import Conversation, Customer, Manager, Task
from crm.routing import Router, choose
from crm.sla import BusinessHours, deadline, reminder_time
from crm.tasks import Tasks
from crm.types import ConversationStatus, TaskKind, TaskState

if TYPE_CHECKING:
    from crm.services import Core

SLA_KINDS = (TaskKind.DEADLINE_WARNING, TaskKind.DEADLINE_MISSED)


def pending_deadline(conv: Conversation) -> datetime | None:
    return conv.first_response_due or conv.next_response_due


class Deadlines:
    def __init__(self, core: Core, tasks: Tasks, router: Router, hours: BusinessHours) -> None:
        self.core = core
        self.tasks = tasks
        self.router = router
        self.hours = hours
        tasks.handle(TaskKind.DEADLINE_WARNING, self._warn)
        tasks.handle(TaskKind.DEADLINE_MISSED, self._missed)

    async def customer_wrote(self, conv: Conversation, *, new: bool) -> None:
        """Start the clock for an answer, unless one is already running."""
        if conv.status is ConversationStatus.CLOSED:
            return
        now = self.core.clock()
        if new:  # ingest set a plain-minutes deadline; count business hours instead
            due = deadline(self.hours, now, self.core.settings.routing.first_response_minutes)
            conv.first_response_due = due
            await conv.save(update_fields=["first_response_due"])
        elif pending_deadline(conv) is None:
            due = deadline(self.hours, now, self.core.settings.sla.next_response_minutes)
            conv.next_response_due = due
            await conv.save(update_fields=["next_response_due"])
        else:
            return
        await self._arm(conv, due, now)

    async def _arm(self, conv: Conversation, due: datetime, now: datetime) -> None:
        await self.tasks.cancel(SLA_KINDS, conversation_id=conv.id, reason="new deadline")
        stamp = to_ms(due)
        before = self.core.settings.sla.remind_before_minutes
        common = {"customer_id": conv.customer_id, "conversation_id": conv.id,
                  "payload": {"due_ms": stamp}}
        if before:
            await self.tasks.schedule(
                TaskKind.DEADLINE_WARNING, reminder_time(now, due, timedelta(minutes=before)),
                key=f"sla-warn:{conv.id}:{stamp}", **common)  # type: ignore[arg-type]
        await self.tasks.schedule(TaskKind.DEADLINE_MISSED, due,
                                  key=f"sla-miss:{conv.id}:{stamp}",
                                  **common)  # type: ignore[arg-type]

    async def reassigned(self, conv: Conversation) -> None:
        """Re-arm a missed deadline for the conversation's new assignee."""
        due = pending_deadline(conv)
        now = self.core.clock()
        if due is None or due > now or conv.status is ConversationStatus.CLOSED:
            return  # no deadline, or one still running (its warning goes to whoever holds it)
        if conv.first_response_due is not None:
            conv.first_response_due = deadline(
                self.hours, now, self.core.settings.routing.first_response_minutes)
            new, field = conv.first_response_due, "first_response_due"
        else:
            conv.next_response_due = deadline(self.hours, now,
                                              self.core.settings.sla.next_response_minutes)
            new, field = conv.next_response_due, "next_response_due"
        await conv.save(update_fields=[field])
        await self._arm(conv, new, now)

    async def answered(self, conversation_id: int) -> None:
        """The customer was answered: no deadline runs until they write again."""
        await Conversation.filter(id=conversation_id).update(next_response_due=None,
                                                             first_response_due=None)
        await self.tasks.cancel(SLA_KINDS, conversation_id=conversation_id, reason="answered")

    async def _still_due(self, task: Task) -> tuple[Conversation, datetime] | None:
        conv = await Conversation.get_or_none(id=task.conversation_id)
        if conv is None or conv.status is ConversationStatus.CLOSED:
            return None
        due = pending_deadline(conv)
        if due is None or to_ms(due) != task.payload.get("due_ms"):
            return None
        return conv, due

    def _local(self, moment: datetime) -> datetime:
        """In the team's time zone: a Phrase shows it in each reader's language."""
        return moment.astimezone(self.hours.zone)

    async def _warn(self, task: Task, now: datetime) -> TaskState:
        found = await self._still_due(task)
        if found is None:
            return TaskState.SKIPPED
        conv, due = found
        if now >= due:  # missed while down: the deadline check right behind says it all
            return TaskState.SKIPPED
        customer = await Customer.get(id=conv.customer_id)
        left = max(1, int((due - now).total_seconds() // 60))
        await self.core.bus.emit(TeamNotice.of(
            "deadline_warning", Phrase("deadline_warning", customer=customer.label,
                                       due=self._local(due), left=left),
            key=f"task:{task.id}", customer_id=conv.customer_id, manager_id=conv.assignee_id))
        return TaskState.DONE

    async def _missed(self, task: Task, now: datetime) -> TaskState:
        found = await self._still_due(task)
        if found is None:
            return TaskState.SKIPPED
        conv, due = found
        customer = await Customer.get(id=conv.customer_id)
        late = await Manager.get_or_none(id=conv.assignee_id) if conv.assignee_id else None
        who = Phrase("assigned_to", name=late.name) if late else Phrase("nobody_assigned")
        await self.core.bus.emit(TeamNotice.of(
            "deadline_missed", Phrase("deadline_missed", customer=customer.label,
                                      since=self._local(due), who=who),
            key=f"task:{task.id}", customer_id=conv.customer_id))
        if late is not None and self.core.settings.sla.reassign_on_miss:
            settings = self.core.settings.routing
            request = await self.router.request_for(conv, exclude=[late.id])
            chosen = choose(await self.router.candidates(not_counting=conv.id), request,
                            settings.strategy, sticky=False)
            if chosen is not None:
                manager = await Manager.get(id=chosen)
                await self.router.assign(conv, manager,
                                         reason=Phrase("reason_missed", name=late.name))
        return TaskState.DONE
