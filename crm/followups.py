"""Follow-ups, reminders, the rating survey and the after-hours auto-reply (config [followups]).

- Automatic follow-up: `silence_hours` after our answer (a manager's, or one sent through the
  API) with no word back, the bot sends `text`; again after as long, at most `max_count` times;
  any message of the customer stops it.
  The hours are business hours when `[sla]` hours are set (crm/sla.py), wall-clock otherwise.
- A manager's `/followup`: their text goes to the customer at the due time unless the customer
  wrote first. A manager's `/remind`: a notice to them at the due time; if they neither answer
  the customer nor mark it done within `reminder_escalate_minutes`, the admins are told. Both
  are due in business days and hours when `[sla]` hours are set (crm/team_commands.py).
- Survey: `survey_delay_minutes` after a conversation closes the customer is asked for a 1–5
  rating; an answer within `survey_answer_hours` is stored on the conversation (CSAT per
  manager) and does not reopen it.
(The after-hours reply and the acknowledgement are crm/autoreplies.py, called by the dialogue.)

Missed while down: reminders and escalations fire late, saying so; follow-ups and surveys more
than `late_limit_hours` / `survey_late_limit_hours` late are skipped (the manager whose follow-up
was skipped is told).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from tortoise.functions import Avg, Count

from crm.clock import to_ms
from crm.errors import SendRejected
from crm.events import ConversationChanged, MessageReceived, TeamNotice
from crm.i18n import Phrase, t
from crm.models import Conversation, Customer, Manager, Message, Task
from crm.sla import BusinessHours
from crm.tasks import Tasks, is_late
from crm.types import (
    Choice,
    ConversationStatus,
    Direction,
    Priority,
    Role,
    TaskKind,
    TaskState,
)

if TYPE_CHECKING:
    from crm.services import Core

log = structlog.get_logger(__name__)

_RATING = re.compile(r"^\s*([1-5])\s*(?:/\s*5|of\s*5|из\s*5)?\s*[.!]?\s*$", re.IGNORECASE)
_STARS = re.compile(r"^\s*(?:[★⭐]\ufe0f?\s*){1,5}$")
CUSTOMER_STOPS = (TaskKind.AUTO_FOLLOWUP, TaskKind.FOLLOWUP)


def parse_rating(text: str) -> int | None:
    """'5', '4/5', '★★★' → the rating; anything else → None (it is a message, not an answer)."""
    m = _RATING.match(text or "")
    if m:
        return int(m.group(1))
    if _STARS.match(text or ""):
        return sum(text.count(s) for s in "★⭐")
    return None


@dataclass(frozen=True, slots=True)
class Csat:
    manager_id: int
    manager: str
    ratings: int
    average: float


class Followups:
    def __init__(self, core: Core, tasks: Tasks, hours: BusinessHours) -> None:
        self.core = core
        self.tasks = tasks
        self.hours = hours
        self.settings = core.settings.followups
        tasks.handle(TaskKind.AUTO_FOLLOWUP, self._auto)
        tasks.handle(TaskKind.FOLLOWUP, self._manual)
        tasks.handle(TaskKind.REMINDER, self._reminder)
        tasks.handle(TaskKind.ESCALATION, self._escalate)
        tasks.handle(TaskKind.SURVEY, self._survey)

    def _lang(self, customer: Customer) -> str:
        return customer.language or self.core.settings.bot.default_language

    def _local(self, moment: datetime) -> datetime:
        """In the team's time zone: a Phrase shows it in each reader's language."""
        return moment.astimezone(self.hours.zone)

    def _after_silence(self, now: datetime) -> datetime:
        """`silence_hours` of business time after `now` (wall-clock when always open)."""
        return self.hours.add(now, timedelta(hours=self.settings.silence_hours))

    # Reactions to the timeline (called in the unit of work of the event) ------------------

    async def customer_wrote(self, conv: Conversation) -> None:
        await self.tasks.cancel(CUSTOMER_STOPS, customer_id=conv.customer_id,
                                reason="the customer wrote")

    async def manager_wrote(self, conv_id: int, customer_id: int, message_id: int,
                            manager_id: int | None) -> None:
        """The customer was answered: by a manager, or through the API (`manager_id` None)."""
        if manager_id is not None:  # their /remind is done; an answer by the API is not theirs
            await self.tasks.cancel([TaskKind.ESCALATION], customer_id=customer_id,
                                    manager_id=manager_id, reason="the manager answered")
        if not self.settings.silence_hours or not self.settings.max_count:
            return
        await self.tasks.cancel([TaskKind.AUTO_FOLLOWUP], conversation_id=conv_id,
                                reason="a newer message")
        await self.tasks.schedule(
            TaskKind.AUTO_FOLLOWUP, self._after_silence(self.core.clock()),
            key=f"auto-followup:{conv_id}:{message_id}:1", customer_id=customer_id,
            conversation_id=conv_id, payload={"round": 1, "after_message_id": message_id})

    async def closed(self, conv: Conversation) -> None:
        await self.tasks.cancel([TaskKind.AUTO_FOLLOWUP, TaskKind.SURVEY],
                                conversation_id=conv.id, reason="closed")
        if not self.settings.survey or conv.rating is not None:
            return
        now = self.core.clock()
        await self.tasks.schedule(
            TaskKind.SURVEY, now + timedelta(minutes=self.settings.survey_delay_minutes),
            key=f"survey:{conv.id}:{to_ms(now)}", customer_id=conv.customer_id,
            conversation_id=conv.id, manager_id=conv.assignee_id)

    async def rating_answer(self, event: MessageReceived, conv: Conversation) -> bool:
        """Store a survey answer; True when the message was one (it does not reopen)."""
        if conv.survey_sent_at is None or conv.rating is not None:
            return False
        now = self.core.clock()
        if now - conv.survey_sent_at > timedelta(hours=self.settings.survey_answer_hours):
            return False
        message = await Message.get(id=event.message_id)
        rating = parse_rating(message.text)
        if rating is None:
            return False
        await self._store_rating(conv, rating, now, reclose=event.reopened)
        return True

    async def open_survey(self, customer_id: int) -> Conversation | None:
        """The conversation whose survey the customer may still answer, if any."""
        since = self.core.clock() - timedelta(hours=self.settings.survey_answer_hours)
        return await Conversation.filter(customer_id=customer_id, survey_sent_at__gte=since,
                                         rating__isnull=True).order_by("-id").first()

    async def rate(self, customer_id: int, rating: int) -> bool:
        """A rating from a button or a numbered choice; False if none was asked."""
        if not 1 <= rating <= 5:
            return False
        async with self.core.bus.unit_of_work():
            conv = await self.open_survey(customer_id)
            if conv is None:
                return False
            await self._store_rating(conv, rating, self.core.clock(), reclose=False)
        return True

    async def _store_rating(self, conv: Conversation, rating: int, now: datetime, *,
                            reclose: bool) -> None:
        conv.rating, conv.rated_at = rating, now
        fields = ["rating", "rated_at"]
        if reclose:  # ingest reopened it for what was only the answer to our question
            conv.status, conv.closed_at = ConversationStatus.CLOSED, now
            fields += ["status", "closed_at"]
        await conv.save(update_fields=fields)
        if reclose:  # so that what heard it reopen (webhooks, the topic) hears it close
            await self.core.bus.emit(ConversationChanged(
                conv.id, conv.customer_id, ConversationStatus.CLOSED, conv.assignee_id,
                "customer"))
        customer = await Customer.get(id=conv.customer_id)
        await self._reply(conv, t("survey_thanks", self._lang(customer)),
                          key=f"survey-thanks:{conv.id}", kind="survey_thanks")

    async def _reply(self, conv: Conversation, text: str, *, key: str, kind: str) -> None:
        """An automatic answer inside the customer's own message's transaction: if it cannot
        be sent (no deliverable address) the message must still be stored."""
        try:
            await self.core.conversations.send(conv.customer_id, text, author_kind="bot",
                                               idempotency_key=key, meta={"kind": kind})
        except SendRejected as e:
            log.warning("followups.auto_reply_rejected", kind=kind,
                        customer_id=conv.customer_id, reason=str(e))

    async def csat(self) -> list[Csat]:
        """Average rating per manager (the assignee of each rated conversation)."""
        rows = await Conversation.filter(rating__isnull=False, assignee_id__isnull=False)\
            .annotate(n=Count("id"), avg=Avg("rating")).group_by("assignee_id")\
            .values("assignee_id", "n", "avg")
        names = {m.id: m.name for m in await Manager.filter(
            id__in=[r["assignee_id"] for r in rows])}
        return sorted((Csat(int(r["assignee_id"]), names.get(r["assignee_id"], "?"),
                            int(r["n"]), round(float(r["avg"]), 2)) for r in rows),
                      key=lambda c: (-c.average, c.manager))

    # Task handlers ------------------------------------------------------------------------

    async def _auto(self, task: Task, now: datetime) -> TaskState:
        conv = await Conversation.get_or_none(id=task.conversation_id)
        after = int(task.payload.get("after_message_id") or 0)  # type: ignore[call-overload]
        if conv is None or conv.status is ConversationStatus.CLOSED:
            return TaskState.SKIPPED
        if await Message.filter(conversation_id=conv.id, direction=Direction.IN,
                                id__gt=after).exists():
            return TaskState.SKIPPED
        if is_late(task, now, timedelta(hours=self.settings.late_limit_hours)):
            return TaskState.SKIPPED
        customer = await Customer.get(id=conv.customer_id)
        text = self.settings.text or t("followup_nudge", self._lang(customer))
        try:
            await self.core.conversations.send(
                conv.customer_id, text, author_kind="bot", priority=Priority.BULK,
                idempotency_key=f"task:{task.id}", meta={"kind": "auto_followup",
                                                         "task_id": task.id})
        except SendRejected as e:  # unreachable now, or silent after an SMS STOP
            log.info("followups.not_sent", task_id=task.id, reason=str(e))
            return TaskState.SKIPPED
        round_ = int(task.payload.get("round") or 1)  # type: ignore[call-overload]
        if round_ < self.settings.max_count:
            await self.tasks.schedule(
                TaskKind.AUTO_FOLLOWUP, self._after_silence(now),
                key=f"auto-followup:{conv.id}:{after}:{round_ + 1}",
                customer_id=conv.customer_id, conversation_id=conv.id,
                payload={"round": round_ + 1, "after_message_id": after})
        return TaskState.DONE

    async def _manual(self, task: Task, now: datetime) -> TaskState:
        if task.customer_id is None:
            return TaskState.SKIPPED
        since = datetime.fromisoformat(str(task.payload.get("since") or task.created_at))
        if await Message.filter(customer_id=task.customer_id, direction=Direction.IN,
                                created_at__gt=since).exists():
            return TaskState.SKIPPED  # the customer wrote first
        manager = await Manager.get_or_none(id=task.manager_id) if task.manager_id else None
        customer = await Customer.get(id=task.customer_id)
        if is_late(task, now, timedelta(hours=self.settings.late_limit_hours)):
            await self.core.bus.emit(TeamNotice.of(
                "followup_skipped", Phrase("followup_skipped", customer=customer.label,
                                           due=self._local(task.due_at), text=task.text),
                key=f"task:{task.id}", customer_id=customer.id, manager_id=task.manager_id))
            return TaskState.SKIPPED
        await self.core.conversations.send(
            customer.id, task.text, author=manager, author_kind="manager",
            priority=Priority.LIVE, idempotency_key=f"task:{task.id}",
            meta={"kind": "followup", "task_id": task.id})
        return TaskState.DONE

    async def _reminder(self, task: Task, now: datetime) -> TaskState:
        customer = await Customer.get_or_none(id=task.customer_id) if task.customer_id \
            else None
        about = Phrase("about_customer", customer=customer.label) if customer else ""
        late = Phrase("late_due", due=self._local(task.due_at)) \
            if is_late(task, now, timedelta(minutes=5)) else ""
        await self.core.bus.emit(TeamNotice.of(
            "reminder", Phrase("reminder", about=about, text=task.text, late=late),
            key=f"task:{task.id}", customer_id=task.customer_id, manager_id=task.manager_id))
        minutes = self.settings.reminder_escalate_minutes
        if minutes and task.manager_id is not None:
            await self.tasks.schedule(
                TaskKind.ESCALATION, now + timedelta(minutes=minutes),
                key=f"escalate:{task.id}", customer_id=task.customer_id,
                manager_id=task.manager_id, text=task.text,
                payload={"reminder_id": task.id, "reminded_at": now.isoformat()})
        return TaskState.DONE

    async def _escalate(self, task: Task, now: datetime) -> TaskState:
        manager = await Manager.get_or_none(id=task.manager_id) if task.manager_id else None
        customer = await Customer.get_or_none(id=task.customer_id) if task.customer_id \
            else None
        who = manager.name if manager else Phrase("a_manager")
        about = Phrase("escalation_about", customer=customer.label) if customer else ""
        text = Phrase("escalation", who=who, about=about, text=task.text,
                      number=task.payload.get("reminder_id"))
        admins: list[Manager | None] = [
            *await Manager.filter(role=Role.ADMIN, active=True).order_by("id")]
        for admin in admins or [None]:
            await self.core.bus.emit(TeamNotice.of(
                "escalation", text, key=f"task:{task.id}:{admin.id if admin else 'team'}",
                customer_id=task.customer_id, manager_id=admin.id if admin else None))
        return TaskState.DONE

    async def _survey(self, task: Task, now: datetime) -> TaskState:
        conv = await Conversation.get_or_none(id=task.conversation_id)
        if conv is None or conv.status is not ConversationStatus.CLOSED \
                or conv.rating is not None:
            return TaskState.SKIPPED
        if is_late(task, now, timedelta(hours=self.settings.survey_late_limit_hours)):
            return TaskState.SKIPPED
        customer = await Customer.get(id=conv.customer_id)
        try:
            await self.core.conversations.send(
                conv.customer_id, t("survey_question", self._lang(customer)),
                author_kind="bot", priority=Priority.BULK, idempotency_key=f"task:{task.id}",
                choices=[Choice(f"rate:{n}", str(n)) for n in range(1, 6)],
                language=self._lang(customer), meta={"kind": "survey", "task_id": task.id})
        except SendRejected as e:  # unreachable now, or silent after an SMS STOP
            log.info("followups.survey_not_sent", task_id=task.id, reason=str(e))
            return TaskState.SKIPPED
        conv.survey_sent_at = now
        await conv.save(update_fields=["survey_sent_at"])
        return TaskState.DONE
