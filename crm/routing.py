"""Routing: who answers a conversation, and the queue of those nobody can take yet.

The choice is pure (`choose` over `Candidate`s); `Router` reads the candidates from the database,
assigns through `Conversations.assign` (timeline entry + audit row) and tells the assignee with a
`TeamNotice`, all in the unit of work of its cause. A conversation nobody can take gets
`queued_at`; the queue drains oldest first when a manager comes online or frees capacity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import structlog
from tortoise.functions import Count

from crm.clock import to_ms
from crm.events import TeamNotice
from crm.i18n import Phrase
from crm.models import Conversation, Customer, Manager
from crm.types import Availability, ConversationStatus

if TYPE_CHECKING:
    from crm.services import Core

log = structlog.get_logger(__name__)

Strategy = Literal["round_robin", "least_busy"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OPEN = (ConversationStatus.OPEN, ConversationStatus.WAITING)
_NEW = Phrase("reason_new")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A manager as routing sees them."""

    id: int
    online: bool
    capacity: int
    open_count: int
    last_assigned_at: datetime | None = None
    channels: frozenset[str] = frozenset()  # empty: every channel
    tags: frozenset[str] = frozenset()  # empty: every customer


@dataclass(frozen=True, slots=True)
class Request:
    """A conversation looking for a manager."""

    channel: str
    tags: frozenset[str] = frozenset()  # the customer's tags
    previous_id: int | None = None  # the customer's previous manager (sticky)
    exclude: frozenset[int] = frozenset()  # e.g. the one who missed the deadline


def can_take(c: Candidate, r: Request) -> bool:
    """Online, under capacity, serving this channel and (if limited) one of these tags."""
    return (c.online and c.open_count < c.capacity and c.id not in r.exclude
            and (not c.channels or r.channel in c.channels)
            and (not c.tags or bool(c.tags & r.tags)))


def choose(candidates: Iterable[Candidate], r: Request, strategy: Strategy,
           sticky: bool = True) -> int | None:
    """The manager for `r`, or None when nobody can take it.

    Sticky first (the previous manager, when they can take it); then specialists whose tags
    match the customer's before generalists; then round robin (longest since their last
    assignment) or least busy (fewest open conversations, ties by round robin).
    """
    able = [c for c in candidates if can_take(c, r)]
    if not able:
        return None
    if sticky and r.previous_id is not None:
        for c in able:
            if c.id == r.previous_id:
                return c.id
    specialists = [c for c in able if c.tags]
    pool = specialists or able

    def idle(c: Candidate) -> tuple[datetime, int]:
        return (c.last_assigned_at or _EPOCH, c.id)

    if strategy == "least_busy":
        return min(pool, key=lambda c: (c.open_count, *idle(c))).id
    return min(pool, key=idle).id


def _any_room(candidates: Iterable[Candidate]) -> bool:
    """Whether anyone could take a conversation at all (`can_take` needs online and room)."""
    return any(c.online and c.open_count < c.capacity for c in candidates)


def took_one(candidates: Sequence[Candidate], manager_id: int,
             now: datetime) -> list[Candidate]:
    """The candidates after `manager_id` got one more conversation (for draining in a loop)."""
    return [replace(c, open_count=c.open_count + 1, last_assigned_at=now)
            if c.id == manager_id else c for c in candidates]


class Router:
    """Assigns conversations per `[routing]` and keeps the queue."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def candidates(self, *, not_counting: int | None = None) -> list[Candidate]:
        managers = await Manager.filter(active=True).order_by("id")
        counts_q = Conversation.filter(status__in=_OPEN, assignee_id__isnull=False)
        if not_counting is not None:
            counts_q = counts_q.exclude(id=not_counting)
        rows = await counts_q.annotate(n=Count("id")).group_by("assignee_id").values(
            "assignee_id", "n")
        counts = {int(r["assignee_id"]): int(r["n"]) for r in rows}
        return [Candidate(id=m.id, online=m.availability is Availability.ONLINE,
                          capacity=m.capacity, open_count=counts.get(m.id, 0),
                          last_assigned_at=m.last_assigned_at,
                          channels=frozenset(m.channels), tags=frozenset(m.tags))
                for m in managers]

    async def request_for(self, conv: Conversation,
                          exclude: Iterable[int] = ()) -> Request:
        customer = await Customer.get(id=conv.customer_id)
        previous = conv.assignee_id
        if previous is None:
            earlier = await Conversation.filter(
                customer_id=conv.customer_id, assignee_id__isnull=False).exclude(
                id=conv.id).order_by("-id").first()
            previous = earlier.assignee_id if earlier else None
        return Request(channel=conv.channel.value, tags=frozenset(customer.tags),
                       previous_id=previous, exclude=frozenset(exclude))

    async def route(self, conv: Conversation, *, exclude: Iterable[int] = (),
                    reason: str | Phrase = _NEW) -> Manager | None:
        """Assign `conv` now or queue it. Call inside the unit of work of its cause."""
        settings = self.core.settings.routing
        now = self.core.clock()
        request = await self.request_for(conv, exclude)
        chosen = choose(await self.candidates(not_counting=conv.id), request,
                        settings.strategy, settings.sticky)
        if chosen is None:
            if conv.queued_at is None:
                conv.queued_at = now
                await conv.save(update_fields=["queued_at"])
                customer = await Customer.get(id=conv.customer_id)
                await self.core.bus.emit(TeamNotice.of(
                    "queue", Phrase("queued", customer=customer.label, reason=reason),
                    key=f"queued:{conv.id}:{to_ms(now)}", customer_id=conv.customer_id))
                log.info("routing.queued", conversation_id=conv.id)
            return None
        if chosen == conv.assignee_id and conv.queued_at is None:
            return await Manager.get(id=chosen)  # still theirs (a sticky reopen)
        manager = await self._with_room(chosen, conv.id)
        if manager is None:  # a concurrent assignment filled them up: wait in the queue
            if conv.queued_at is None:
                conv.queued_at = now
                await conv.save(update_fields=["queued_at"])
            return None
        await self.assign(conv, manager, reason=reason)
        return manager

    async def _with_room(self, manager_id: int, conv_id: int) -> Manager | None:
        """The manager, locked for this transaction, if they can still take a conversation.

        The candidates were counted before; two conversations routed at once (or a drain in
        another process) may both have picked the last free place. On PostgreSQL the row lock
        makes the second wait for the first and count again; SQLite has one writer anyway.
        """
        manager = await Manager.filter(id=manager_id).select_for_update().first()
        if manager is None:
            return None
        holding = await Conversation.filter(assignee_id=manager_id, status__in=_OPEN).exclude(
            id=conv_id).count()
        return manager if holding < manager.capacity else None

    async def assign(self, conv: Conversation, manager: Manager, *, reason: str | Phrase,
                     actor: str = "routing") -> None:
        """Assign and tell the assignee; the timeline and the audit log record it."""
        now = self.core.clock()
        await self.core.conversations.assign(conv.customer_id, manager, actor=actor)
        await Conversation.filter(id=conv.id).update(queued_at=None)
        await Manager.filter(id=manager.id).update(last_assigned_at=now)
        conv.assignee_id, conv.queued_at = manager.id, None
        customer = await Customer.get(id=conv.customer_id)
        await self.core.bus.emit(TeamNotice.of(
            "assigned", Phrase("now_yours", customer=customer.label, reason=reason),
            key=f"assigned:{conv.id}:{manager.id}:{to_ms(now)}",
            customer_id=conv.customer_id, manager_id=manager.id))
        log.info("routing.assigned", conversation_id=conv.id, manager_id=manager.id,
                 reason=str(reason))

    async def queue(self) -> list[Conversation]:
        """The waiting conversations, oldest first."""
        return await Conversation.filter(queued_at__isnull=False).exclude(
            status=ConversationStatus.CLOSED).order_by("queued_at", "id").limit(500)

    async def drain(self) -> int:
        """Assign queued conversations, oldest first, while someone can take them."""
        await self._adopt_orphans()
        settings = self.core.settings.routing
        candidates = await self.candidates()
        # Nobody online with room takes anything: reading the queue (up to 500 conversations
        # and two lookups each) would only find that out again, on every tick.
        if not _any_room(candidates):
            return 0
        waiting = await self.queue()
        assigned = 0
        for conv in waiting:
            if not _any_room(candidates):
                break
            request = await self.request_for(conv)
            chosen = choose(candidates, request, settings.strategy, settings.sticky)
            if chosen is None:
                continue
            async with self.core.bus.unit_of_work():
                # Claim it: another process draining at the same time takes it or we do.
                claimed = await Conversation.filter(
                    id=conv.id, queued_at__isnull=False).exclude(
                    status=ConversationStatus.CLOSED).update(queued_at=None)
                if not claimed:
                    continue
                manager = await self._with_room(chosen, conv.id)
                if manager is None:  # full since we counted: leave it queued
                    await Conversation.filter(id=conv.id).update(queued_at=conv.queued_at)
                    candidates = [c for c in candidates if c.id != chosen]
                    continue
                waited = self.core.clock() - (conv.queued_at or self.core.clock())
                await self.assign(conv, manager,
                                  reason=Phrase("reason_from_queue", waited=_minutes(waited)))
            candidates = took_one(candidates, chosen, self.core.clock())
            assigned += 1
        return assigned

    async def _adopt_orphans(self) -> None:
        """Open conversations nobody routed (e.g. arrived before routing was installed)."""
        await Conversation.filter(status=ConversationStatus.OPEN, assignee_id__isnull=True,
                                  queued_at__isnull=True).update(queued_at=self.core.clock())

    async def set_availability(self, manager: Manager, availability: Availability) -> int:
        """Online or away; coming online drains the queue. Returns how many were assigned."""
        await self.core.managers.set_availability(manager, availability)
        if availability is Availability.ONLINE:
            return await self.drain()
        return 0


def _minutes(delta: object) -> Phrase:
    seconds = int(getattr(delta, "total_seconds", lambda: 0)())
    if seconds < 3600:
        return Phrase("minutes", {"m": max(1, seconds // 60)})
    return Phrase("hours_minutes", {"h": seconds // 3600, "m": seconds % 3600 // 60})
