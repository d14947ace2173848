"""Waits recorded as they end: the first response, each reply, each resolution.

Automation (crm/automation.py) calls these where it already decides who owes whom an answer:
a customer's message that reaches the team starts a wait (unless one is running); the next
message of a person (a manager's reply, their scheduled follow-up) ends it; a close ends the
conversation's stint. Each end is one `ReportFact` row with its wall-clock and business-hours
length (crm/sla.py), written in the same transaction as its cause.

Why rows and not queries over the timeline: business hours (time zone, weekends, holidays)
cannot be counted in SQL on both databases, and "the first reply after the customer began to
wait" would scan every message of the period for every report. A row per wait makes each
report a window-function query over a small table. `rebuild` recomputes the rows from the
timeline, for a database that has history from before reports existed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from crm import sql
from crm.clock import Clock, utcnow
from crm.models import Conversation, ReportFact
from crm.sla import BusinessHours
from crm.types import ConversationStatus, FactKind

log = structlog.get_logger(__name__)


class Facts:
    def __init__(self, hours: BusinessHours, clock: Clock = utcnow) -> None:
        self.hours = hours
        self.clock = clock

    def fact(self, kind: FactKind, conv: Conversation | Any, start: datetime, end: datetime,
             manager_id: int | None, channel: str) -> ReportFact:
        return ReportFact(
            kind=kind, conversation_id=conv.id, customer_id=conv.customer_id,
            manager_id=manager_id, channel=channel, started_at=start, ended_at=end,
            seconds=max(0, int((end - start).total_seconds())),
            business_seconds=int(self.hours.between(start, end).total_seconds()))

    async def customer_waits(self, conv: Conversation) -> None:
        """The customer wrote to the team: their wait starts now, unless it runs already."""
        if conv.waiting_since is None:
            now = self.clock()
            conv.waiting_since = now
            await Conversation.filter(id=conv.id, waiting_since=None).update(waiting_since=now)

    async def person_replied(self, conversation_id: int, manager_id: int | None,
                             channel: str) -> None:
        """A person wrote to the customer: the wait (if any) ends, as the conversation's first
        response if nobody had replied before, else as a reply. `manager_id` is None for an
        answer through the API (README: a message sent through the API answers the customer)."""
        conv = await Conversation.get_or_none(id=conversation_id)
        if conv is None:
            return
        now = self.clock()
        updates: dict[str, Any] = {}
        if conv.waiting_since is not None:
            kind = FactKind.FIRST_RESPONSE if conv.first_reply_at is None else FactKind.REPLY
            await self.fact(kind, conv, conv.waiting_since, now, manager_id, channel).save()
            updates["waiting_since"] = None
        if conv.first_reply_at is None:
            updates["first_reply_at"] = now
        if updates:
            await Conversation.filter(id=conv.id).update(**updates)

    async def closed(self, conv: Conversation) -> None:
        """A stint ended: from the opening (or the last reopening) to the close."""
        if conv.status is not ConversationStatus.CLOSED or conv.closed_at is None:
            return
        if conv.rated_at is not None and conv.rated_at == conv.closed_at:
            return  # the customer's rating re-closed what their answer had reopened: no stint
        start = conv.reopened_at or conv.opened_at
        await self.fact(FactKind.RESOLUTION, conv, start, conv.closed_at, conv.assignee_id,
                        conv.channel.value).save()
        if conv.waiting_since is not None:
            await Conversation.filter(id=conv.id).update(waiting_since=None)


async def rebuild(facts: Facts, *, batch: int = 2000) -> int:
    """Recompute every fact from the timeline (replacing the recorded ones); returns how many.

    What the timeline keeps: each message with its direction, author and time, and of each
    conversation its opening and its last close. So earlier closes of a reopened conversation
    are not known here: one resolution per closed conversation, from its opening.
    """
    from tortoise.transactions import in_transaction

    written = 0
    async with in_transaction() as tx:
        await sql.execute(tx, "DELETE FROM report_fact")
        last = 0
        while True:
            convs = await sql.fetch(tx, "SELECT id, customer_id, assignee_id, channel, status, "
                                    "opened_at, closed_at FROM conversation WHERE id > ? "
                                    "ORDER BY id LIMIT ?", [last, batch])
            if not convs:
                break
            last = convs[-1]["id"]
            ids = [c["id"] for c in convs]
            msgs = await sql.fetch(
                tx, "SELECT conversation_id, direction, author_id, author_kind, channel, "
                "automated, meta, created_at FROM message WHERE conversation_id IN "
                f"({sql.placeholders(len(ids))}) AND direction IN ('in', 'out') "
                "ORDER BY conversation_id, created_at, id", ids)
            by_conv: dict[int, list[dict[str, Any]]] = {}
            for m in msgs:
                by_conv.setdefault(m["conversation_id"], []).append(m)
            rows: list[ReportFact] = []
            for c in convs:
                rows += _replay(facts, c, by_conv.get(c["id"], []))
            if rows:
                await ReportFact.bulk_create(rows, using_db=tx)
                written += len(rows)
    log.info("reports.rebuilt", facts=written)
    return written


def _replay(facts: Facts, c: dict[str, Any], msgs: list[dict[str, Any]]) -> list[ReportFact]:
    conv = Conversation(id=c["id"], customer_id=c["customer_id"])
    out: list[ReportFact] = []
    waiting: datetime | None = None
    replied = False
    for m in msgs:
        at = sql.as_datetime(m["created_at"])
        assert at is not None
        if m["direction"] == "in":
            meta = m["meta"]
            command = '"command"' in meta if isinstance(meta, str) else bool(
                (meta or {}).get("command"))
            if waiting is None and not m["automated"] and not command:
                waiting = at
        elif m["author_id"] is not None:
            if waiting is not None:
                kind = FactKind.REPLY if replied else FactKind.FIRST_RESPONSE
                out.append(facts.fact(kind, conv, waiting, at, m["author_id"], m["channel"]))
                waiting = None
            replied = True
    closed = sql.as_datetime(c["closed_at"])
    opened = sql.as_datetime(c["opened_at"])
    if c["status"] == ConversationStatus.CLOSED.value and closed and opened:
        out.append(facts.fact(FactKind.RESOLUTION, conv, opened, closed, c["assignee_id"],
                              str(c["channel"])))
    return out


class FactRecords:
    """A customer's recorded waits follow them on merge; export says how many there are (the
    times are the team's, not the customer's data); forget keeps them, anonymous, for the
    figures."""

    model = ReportFact

    async def move(self, source_id: int, target_id: int) -> dict[str, int]:
        moved = await ReportFact.filter(customer_id=source_id).update(customer_id=target_id)
        return {"report_facts": moved}

    async def export(self, customer_id: int) -> dict[str, Any]:
        return {"report_facts": await ReportFact.filter(customer_id=customer_id).count()}

    async def forget(self, customer_id: int) -> dict[str, int]:
        return {}
