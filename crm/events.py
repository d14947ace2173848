"""Events of the core and the bus that carries them.

Handlers run in one of two phases. `in_transaction` handlers run at once, inside the unit of work
that emitted the event, so what they write (an outbox row mirroring a message to the managers'
chat) commits or rolls back with it. `after_commit` handlers run once the unit of work committed
(waking the dispatcher, notifying routing); they never see an event that was rolled back.
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from crm.i18n import Phrase
from crm.types import (
    Attachment,
    Channel,
    ConsentKind,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Priority,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A new inbound message (or a system event from a customer's channel) joined the timeline."""

    message_id: int
    customer_id: int
    conversation_id: int | None
    channel: Channel
    direction: Direction
    new_customer: bool
    new_conversation: bool
    reopened: bool
    automated: bool
    command: str | None


@dataclass(frozen=True, slots=True)
class MessageEdited:
    message_id: int
    customer_id: int
    channel: Channel


@dataclass(frozen=True, slots=True)
class MessageQueued:
    """An outbound message or note entered the timeline (a reply, a bot answer, a campaign)."""

    message_id: int
    customer_id: int
    conversation_id: int | None
    channel: Channel
    direction: Direction
    author_id: int | None
    outbox_id: int | None
    # A person's answer to the customer (a manager's, or one sent through the API: the shop's
    # system or someone using it): the conversation now waits on the customer, not on us.
    answers: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryChanged:
    """An outbound message was sent, delivered, read or failed."""

    message_id: int | None
    outbox_id: int | None
    customer_id: int | None
    channel: Channel
    status: DeliveryStatus
    error: str | None
    # Recorded with a batch of the bulk lane (campaigns): nobody waits for a reaction to it.
    batched: bool = False


@dataclass(frozen=True, slots=True)
class OutboxQueued:
    """A row was queued: the dispatcher wakes the lane of its priority."""

    channel: Channel
    priority: int = Priority.LIVE
    address: str = ""


@dataclass(frozen=True, slots=True)
class ConversationChanged:
    conversation_id: int
    customer_id: int
    status: ConversationStatus
    assignee_id: int | None
    actor: str
    change: str = "status"  # "status" (opened, waiting, closed) or "assigned"


@dataclass(frozen=True, slots=True)
class TeamNotice:
    """Something the team must see: an assignment, a reminder, a missed deadline, an escalation.

    Emitted inside the unit of work of its cause; the managers' chat (bot/) subscribes in the
    transaction and queues the notice for the customer's topic, or the manager's private chat.
    """

    kind: str  # assigned, reminder, deadline_warning, deadline_missed, escalation, queue, …
    text: str  # plain text (English); renderers escape it
    key: str  # idempotency key: the same notice is never sent twice
    customer_id: int | None = None
    manager_id: int | None = None  # addressed to one manager; None: the team
    phrase: Phrase | None = None  # the text to put in each reader's language

    @classmethod
    def of(cls, kind: str, phrase: Phrase, key: str, **where: int | None) -> TeamNotice:
        return cls(kind=kind, text=phrase.render(), key=key, phrase=phrase, **where)

    def render(self, language: str | None = None) -> str:
        return self.phrase.render(language) if self.phrase is not None else self.text


@dataclass(frozen=True, slots=True)
class TeamReport:
    """A report's chart for one member of the team (the weekly digest): the managers' chat
    (bot/) queues it, as a photo with `caption`, for their private chat with the bot."""

    manager_id: int
    photo: Attachment
    caption: str
    key: str  # idempotency key of the message


@dataclass(frozen=True, slots=True)
class ConsentChanged:
    """A customer's consent changed (crm/consent.py); `channel` is a channel's value or "*"."""

    customer_id: int
    kind: ConsentKind
    channel: str
    granted: bool
    source: str
    actor: str


@dataclass(frozen=True, slots=True)
class OrderStatusChanged:
    """An order entered a status (crm/orders): emitted once per change, in its transaction."""

    order_id: int
    customer_id: int
    number: str
    status: str
    previous_status: str | None  # None: the order is new
    source: str  # api, import, manager, cli
    actor: str
    note: str
    happened_at: datetime


@dataclass(frozen=True, slots=True)
class CampaignFinished:
    """Every recipient of a campaign was sent to, skipped or failed (crm/campaigns/engine.py);
    emitted once, in the transaction that marks it finished."""

    campaign_id: int
    name: str
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class CustomersMerged:
    source_id: int
    target_id: int


Phase = Literal["in_transaction", "after_commit"]
Handler = Callable[[Any], Awaitable[None]]

_pending: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "crm_pending_events", default=None
)


RECORD = 0  # order of handlers that record what happened (the managers' chat mirror)
REACT = 100  # order of handlers that act on it (routing, deadlines): they run after the records


class EventBus:
    """A small in-process publish/subscribe keyed by event type.

    A phase's handlers run by `order`, then in the order they subscribed: whatever subscribes
    first, the mirror records a customer's message in the managers' chat before routing reacts
    to it, so the message comes before its own assignment notice.
    """

    def __init__(self) -> None:
        self._handlers: dict[tuple[type, Phase], list[Handler]] = defaultdict(list)
        self._orders: dict[tuple[type, Phase], list[int]] = defaultdict(list)

    def subscribe(self, event_type: type, handler: Handler,
                  phase: Phase = "after_commit", order: int = RECORD) -> None:
        key = (event_type, phase)
        orders = self._orders[key]
        at = sum(1 for o in orders if o <= order)  # after every handler of this order or less
        orders.insert(at, order)
        self._handlers[key].insert(at, handler)

    async def emit(self, event: Any) -> None:
        """Run the in-transaction handlers now; queue the event for after the commit."""
        for handler in self._handlers.get((type(event), "in_transaction"), ()):
            await handler(event)
        pending = _pending.get()
        if pending is None:  # emitted outside a unit of work: nothing to wait for
            await self._after_commit(event)
        else:
            pending.append(event)

    async def _after_commit(self, event: Any) -> None:
        for handler in self._handlers.get((type(event), "after_commit"), ()):
            try:
                await handler(event)
            except Exception:
                # The event is committed; a failing listener must not undo it or stop the others.
                log.exception("event.handler_failed", event_type=type(event).__name__,
                              handler=getattr(handler, "__qualname__", repr(handler)))

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[BaseDBAsyncClient]:
        """A transaction whose events reach after-commit listeners only if it commits."""
        outer = _pending.get()
        if outer is not None:  # nested: join the outer unit of work
            async with in_transaction() as tx:
                yield tx
            return
        pending: list[Any] = []
        token = _pending.set(pending)
        try:
            async with in_transaction() as tx:
                yield tx
        finally:
            _pending.reset(token)
        for event in pending:
            await self._after_commit(event)
