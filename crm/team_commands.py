"""What the managers' scheduling commands do: /remind, /followup, /tasks, /queue, /online, /away.

Each takes (manager, customer_id, args, now) and returns the reply text, so a chat handler only
parses the update, calls one of these and answers. `customer_id` is the customer whose topic the
command was written in (None in a private chat). A mistake is answered with how to do it right.
With `[sla]` hours set, "/followup 2d" and "/remind 3h" count business days and hours, like the
automatic follow-ups (crm/sla.py `BusinessHours.later`).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from crm.clock import to_ms
from crm.errors import CrmError
from crm.i18n import Phrase, Text, in_language, moment, team
from crm.models import Conversation, Customer, Manager, Task
from crm.routing import Router
from crm.sla import BusinessHours
from crm.tasks import Tasks
from crm.types import Availability, Role, TaskKind, TaskState

if TYPE_CHECKING:
    from crm.services import Core

_PART = re.compile(r"(\d+)\s*(w|d|h|m)", re.IGNORECASE)
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1),
          "m": timedelta(minutes=1)}
MAX_AHEAD = timedelta(days=366)


class UsageError(CrmError):
    """A command written wrongly; the message says how to write it."""

    def __init__(self, phrase: Phrase) -> None:
        super().__init__(phrase)


def parse_duration(text: str) -> timedelta:
    """'90m', '3h', '2d', '1w', '1h30m' → a timedelta; anything else raises UsageError."""
    compact = (text or "").strip().lower()
    if not compact or _PART.sub("", compact).strip():
        raise UsageError(Phrase("not_a_duration", text=repr(text)))
    total = sum((int(n) * _UNITS[u.lower()] for n, u in _PART.findall(compact)), timedelta())
    if total <= timedelta(0):
        raise UsageError(Phrase("duration_zero"))
    if total > MAX_AHEAD:
        raise UsageError(Phrase("duration_too_far"))
    return total


def split_when(args: str, usage: str) -> tuple[timedelta, str]:
    """'2d call back about the invoice' → (2 days, 'call back about the invoice')."""
    head, _, text = (args or "").strip().partition(" ")
    if not head or not text.strip():
        raise UsageError(Phrase("usage", usage=usage))
    return parse_duration(head), text.strip()


@dataclass(frozen=True, slots=True)
class TaskLine:
    """A pending task as people read it (`str()` of a name: English, for the command line)."""

    id: int
    manager: Text  # their name, or "team" for a task of nobody's
    due_at: datetime
    kind: str
    customer: Text  # the customer's name (or "customer #12"), or ""
    text: str


class TeamCommands:
    def __init__(self, core: Core, tasks: Tasks, router: Router, hours: BusinessHours) -> None:
        self.core = core
        self.tasks = tasks
        self.router = router
        self.hours = hours

    def _local(self, when: datetime, lang: str) -> str:
        return moment(when.astimezone(self.hours.zone), lang)

    def _lang(self, manager: Manager) -> str:
        return manager.language or self.core.settings.team_language

    async def remind(self, manager: Manager, customer_id: int | None, args: str,
                     now: datetime, ref: str | None = None) -> str:
        """/remind 2d call back about the invoice"""
        lang = self._lang(manager)
        try:
            delay, text = split_when(args, team("usage_remind", lang))
        except UsageError as e:
            return e.in_language(lang)
        ref = ref or _default_ref(manager, customer_id, now, text)
        task = await self.tasks.schedule(
            TaskKind.REMINDER, self.hours.later(now, delay), key=f"remind:{ref}",
            customer_id=customer_id, manager_id=manager.id, text=text,
            created_by=f"manager:{manager.id}")
        return team("reminder_set", lang, id=task.id, due=self._local(task.due_at, lang),
                    text=task.text)

    async def followup(self, manager: Manager, customer_id: int | None, args: str,
                       now: datetime, ref: str | None = None) -> str:
        """/followup 3d TEXT — sent to the customer then, unless they write first."""
        lang = self._lang(manager)
        if customer_id is None:
            return team("followup_where", lang)
        try:
            delay, text = split_when(args, team("usage_followup", lang))
        except UsageError as e:
            return e.in_language(lang)
        conv = await Conversation.filter(customer_id=customer_id).order_by("-id").first()
        task = await self.tasks.schedule(
            TaskKind.FOLLOWUP, self.hours.later(now, delay),
            key=f"followup:{ref or _default_ref(manager, customer_id, now, text)}",
            customer_id=customer_id, conversation_id=conv.id if conv else None,
            manager_id=manager.id, text=text, payload={"since": now.isoformat()},
            created_by=f"manager:{manager.id}")
        return team("followup_set", lang, id=task.id, due=self._local(task.due_at, lang),
                    text=task.text)

    async def queue(self, manager: Manager, customer_id: int | None, args: str,
                    now: datetime) -> str:
        """/queue — who waits for a manager, oldest first."""
        lang = self._lang(manager)
        waiting = await self.router.queue()
        if not waiting:
            return team("queue_empty", lang)
        names = await _customer_names(c.customer_id for c in waiting)
        lines = [team("queue_head", lang, n=len(waiting))]
        for conv in waiting[:50]:
            since = conv.queued_at or now
            minutes = max(0, int((now - since).total_seconds() // 60))
            lines.append(team("queue_line", lang, name=names.get(conv.customer_id, "?"),
                              channel=conv.channel.value, minutes=minutes))
        return "\n".join(lines)

    async def tasks_command(self, manager: Manager, customer_id: int | None, args: str,
                            now: datetime) -> str:
        """/tasks (mine), /tasks all (by manager), /tasks done N, /tasks cancel N"""
        lang = self._lang(manager)
        word, _, rest = (args or "").strip().partition(" ")
        if word in ("done", "cancel"):
            return await self._close_task(manager, rest.strip(), word, now)
        everyone = word == "all"
        lines = await self.lines(None if everyone else manager.id)
        if not lines:
            return team("nothing_due" if everyone else "nothing_due_yours", lang)
        by_manager: dict[str, list[TaskLine]] = defaultdict(list)
        for line in lines:
            by_manager[in_language(line.manager, lang)].append(line)
        out: list[str] = []
        for who, items in by_manager.items():
            out.append(f"{who}:")
            for i in items:
                about = f" — {in_language(i.customer, lang)}" if i.customer else ""
                out.append(f"  #{i.id} {self._local(i.due_at, lang)} "
                           f"{team(f'task_kind_{i.kind}', lang)}{about}: {i.text}")
        return "\n".join(out)

    async def _close_task(self, manager: Manager, number: str, word: str,
                          now: datetime) -> str:
        lang = self._lang(manager)
        if not number.lstrip("#").isdigit():
            return team("usage", lang, usage=f"/tasks {word} 12")
        task = await Task.get_or_none(id=int(number.lstrip("#")))
        if task is None or (task.manager_id != manager.id and manager.role is not Role.ADMIN):
            return team("no_such_task", lang, number=number.lstrip("#"))
        if word == "done" and task.kind is TaskKind.REMINDER:
            # The reminder fired already; what is pending is its escalation.
            await Task.filter(key=f"escalate:{task.id}", state=TaskState.PENDING).update(
                state=TaskState.CANCELLED, done_at=now, last_error="marked done")
        state = TaskState.DONE if word == "done" else TaskState.CANCELLED
        await Task.filter(id=task.id, state=TaskState.PENDING).update(state=state, done_at=now)
        return team("task_done" if word == "done" else "task_cancelled", lang, id=task.id)

    async def online(self, manager: Manager, customer_id: int | None, args: str,
                     now: datetime) -> str:
        lang = self._lang(manager)
        assigned = await self.router.set_availability(manager, Availability.ONLINE)
        left = len(await self.router.queue())
        out = [team("online", lang)]
        if assigned:
            out.append(team("online_assigned", lang, n=assigned))
        if left:
            out.append(team("still_waiting", lang, n=left))
        return " ".join(out)

    async def away(self, manager: Manager, customer_id: int | None, args: str,
                   now: datetime) -> str:
        await self.router.set_availability(manager, Availability.AWAY)
        return team("away", self._lang(manager))

    async def lines(self, manager_id: int | None = None) -> list[TaskLine]:
        """Pending tasks (with names), by manager then due time: for /tasks and the CLI."""
        tasks = await self.tasks.pending(manager_id)
        names = await _customer_names(t.customer_id for t in tasks if t.customer_id)
        managers = {m.id: m.name for m in await Manager.filter(
            id__in=[t.manager_id for t in tasks if t.manager_id])}
        lines = [TaskLine(t.id, managers.get(t.manager_id or 0) or Phrase("task_team"),
                          t.due_at, t.kind.value, names.get(t.customer_id or 0, ""), t.text)
                 for t in tasks]
        return sorted(lines, key=lambda x: (str(x.manager), x.due_at, x.id))


def _default_ref(manager: Manager, customer_id: int | None, now: datetime, text: str) -> str:
    """Without the chat's message reference: the same command at the same moment is one."""
    digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]
    return f"{manager.id}:{customer_id}:{to_ms(now)}:{digest}"


async def _customer_names(ids: object) -> dict[int, Text]:
    wanted = sorted(set(ids))  # type: ignore[call-overload]
    return {c.id: c.label for c in await Customer.filter(id__in=wanted)}
