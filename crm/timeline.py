"""Ingest: an inbound message becomes one entry in one customer's timeline, exactly once."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from crm import metrics, sql
from crm.clock import Clock, utcnow
from crm.config import Settings
from crm.events import EventBus, MessageEdited, MessageReceived
from crm.identity import normalize_address
from crm.models import Conversation, Customer, Identity, Message
from crm.types import Channel, ConversationStatus, DeliveryStatus, Direction, InboundMessage

log = structlog.get_logger(__name__)

# last_seen_at is for people ("seen 5 minutes ago") and for picking a customer's freshest
# address; a minute's precision is plenty, and skipping the write halves a chatty burst's cost.
_SEEN_PRECISION = timedelta(seconds=60)
_ACTIVE = (ConversationStatus.OPEN, ConversationStatus.WAITING)


@dataclass(frozen=True, slots=True)
class IngestResult:
    message_id: int
    customer_id: int
    conversation_id: int | None
    duplicate: bool = False
    new_customer: bool = False
    identity_id: int | None = None  # the sender's identity (None for a known duplicate)
    undeliverable: bool = False  # the sender's address was marked undeliverable before this


@dataclass
class _Work:
    """What one transaction has learnt so far, so a batch asks the database each thing once."""

    now: datetime
    conn: BaseDBAsyncClient
    known: dict[tuple[Channel, str], IngestResult] = field(default_factory=dict)
    identities: dict[tuple[Channel, str], Identity] = field(default_factory=dict)
    active: dict[int, Conversation] = field(default_factory=dict)  # customer id -> conversation
    inbound: dict[int, Channel] = field(default_factory=dict)  # conversation id -> channel
    seen_customers: set[int] = field(default_factory=set)
    seen_identities: set[int] = field(default_factory=set)
    events: list[Any] = field(default_factory=list)


class Timeline:
    """Stores what arrives (dedupe, identity, timeline, conversation, event) atomically.

    It is also the core's inbox until the composition root installs the customer dialogue
    (bot/customer.py), which stores through `ingest` and answers.
    """

    def __init__(self, settings: Settings, bus: EventBus, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.bus = bus
        self.clock = clock

    async def ingest(self, msg: InboundMessage) -> IngestResult:
        """Store one message. Safe to call twice or concurrently for the same message."""
        [result] = await self._store([msg])
        return result

    async def receive(self, msg: InboundMessage) -> IngestResult:
        """The inbox's way in (crm/ports.py Inbox): store, answer nothing."""
        return await self.ingest(msg)

    async def ingest_batch(self, msgs: Sequence[InboundMessage]) -> list[IngestResult]:
        """Store many messages in one transaction (adapters that receive in batches)."""
        if not msgs:
            return []
        return await self._store(list(msgs))

    async def _store(self, msgs: list[InboundMessage]) -> list[IngestResult]:
        msgs = [_clean(m) for m in msgs]
        # Addresses are checked before any transaction: a bad one fails the call, stores nothing.
        addresses = [normalize_address(m.channel, m.sender, self.settings.sms.default_region)
                     for m in msgs]
        # The common case, a new message, needs no duplicate check up front: the unique key on
        # (channel, external_id) refuses a copy, and the retry then looks for it.
        check = len(msgs) > 1
        for attempt in (1, 2, 3):
            try:
                async with self.bus.unit_of_work() as tx:
                    work = _Work(now=self.clock(), conn=tx)
                    if check:
                        await self._prefetch(work, msgs, addresses)
                    results = [await self._one(work, m, a) for m, a in zip(msgs, addresses,
                                                                           strict=True)]
                    await self._flush(work)
                break
            except IntegrityError:
                # A copy of one of them, or a concurrent first message from the same new sender,
                # won a race; the next pass sees its rows and dedupes or reuses them.
                check = True
                if attempt == 3:
                    raise
        for msg, result in zip(msgs, results, strict=True):
            if not result.duplicate:
                metrics.MESSAGES_IN.labels(channel=msg.channel.value).inc()
        return results

    async def _prefetch(self, work: _Work, msgs: list[InboundMessage],
                        addresses: list[str]) -> None:
        by_channel: dict[Channel, list[int]] = defaultdict(list)
        for i, m in enumerate(msgs):
            by_channel[m.channel].append(i)
        for channel, idx in by_channel.items():
            ext_ids = list({msgs[i].external_id for i in idx})
            for row in await Message.filter(channel=channel, external_id__in=ext_ids).values(
                    "id", "external_id", "customer_id", "conversation_id"):
                work.known[(channel, row["external_id"])] = IngestResult(
                    row["id"], row["customer_id"], row["conversation_id"], duplicate=True)
            found = await Identity.filter(
                channel=channel, address__in=list({addresses[i] for i in idx})
            ).select_related("customer")
            for identity in found:
                work.identities[(channel, identity.address)] = identity
        customer_ids = list({i.customer_id for i in work.identities.values()})
        if customer_ids:
            for conv in await Conversation.filter(customer_id__in=customer_ids,
                                                  status__in=_ACTIVE).order_by("id"):
                work.active[conv.customer_id] = conv  # the newest active one wins

    async def _one(self, work: _Work, msg: InboundMessage, address: str) -> IngestResult:
        key = (msg.channel, msg.external_id)
        if key in work.known:
            known = work.known[key]
            return IngestResult(known.message_id, known.customer_id, known.conversation_id,
                                duplicate=True)
        identity, new_customer = await self._identity(work, msg, address)
        customer: Customer = identity.customer

        if msg.edit_of is not None:
            edited = await self._apply_edit(work, msg, customer)
            if edited is not None:
                work.known[key] = edited
                return edited

        routable = not msg.automated and msg.command is None
        conversation, new_conv, reopened = await self._conversation_for(
            work, customer, msg, open_new=routable)
        message = await Message.create(
            customer_id=customer.id,
            conversation_id=conversation.id if conversation else None,
            identity_id=identity.id,
            direction=Direction.IN if not msg.automated else Direction.EVENT,
            channel=msg.channel,
            external_id=msg.external_id,
            text=msg.text,
            attachments=[a.to_json() for a in msg.attachments],
            meta=_meta(msg),
            reply_to=msg.reply_to,
            author_kind="customer" if not msg.automated else "system",
            delivery_status=DeliveryStatus.RECEIVED,
            automated=msg.automated,
            created_at=work.now,
            sent_at=msg.sent_at,
        )
        if conversation is not None and routable:
            work.inbound[conversation.id] = msg.channel
            conversation.status = ConversationStatus.OPEN
        if _stale(customer.last_seen_at, work.now):
            work.seen_customers.add(customer.id)
        if _stale(identity.last_seen_at, work.now):
            work.seen_identities.add(identity.id)
        result = IngestResult(message.id, customer.id, conversation.id if conversation else None,
                              new_customer=new_customer, identity_id=identity.id,
                              undeliverable=identity.undeliverable_reason is not None)
        work.known[key] = result
        work.events.append(MessageReceived(
            message_id=message.id, customer_id=customer.id,
            conversation_id=conversation.id if conversation else None,
            channel=msg.channel, direction=message.direction, new_customer=new_customer,
            new_conversation=new_conv, reopened=reopened, automated=msg.automated,
            command=msg.command,
        ))
        return result

    async def _flush(self, work: _Work) -> None:
        """Write what the messages changed, a statement per kind rather than per message."""
        by_channel: dict[Channel, list[int]] = defaultdict(list)
        for conv_id, channel in work.inbound.items():
            by_channel[channel].append(conv_id)
        for channel, ids in by_channel.items():
            await sql.execute(
                work.conn, "UPDATE conversation SET last_inbound_at = ?, channel = ?, "
                f"status = 'open' WHERE id IN ({sql.placeholders(len(ids))})",
                [work.now, channel.value, *ids])
        if work.seen_customers:
            await Customer.filter(id__in=list(work.seen_customers)).update(
                last_seen_at=work.now)
        if work.seen_identities:
            await Identity.filter(id__in=list(work.seen_identities)).update(
                last_seen_at=work.now)
        for event in work.events:
            await self.bus.emit(event)

    async def _identity(self, work: _Work, msg: InboundMessage,
                        address: str) -> tuple[Identity, bool]:
        key = (msg.channel, address)
        identity = work.identities.get(key)
        if identity is None:
            identity = await _find_identity(work.conn, msg.channel, address, work.active)
        if identity is not None:
            customer = identity.customer
            if msg.sender_name and not customer.name:
                customer.name = msg.sender_name[:200]
                await customer.save(update_fields=["name"])
            work.identities[key] = identity
            return identity, False
        customer = await Customer.create(
            name=msg.sender_name[:200] if msg.sender_name else None,
            language=_language(msg.language) or None, last_seen_at=work.now,
        )
        identity = await Identity.create(
            customer_id=customer.id, channel=msg.channel, address=address,
            display_name=(msg.sender_name or "")[:200] or None, last_seen_at=work.now,
        )
        identity.customer = customer
        work.identities[key] = identity
        log.info("customer.created", customer_id=customer.id, channel=msg.channel.value)
        return identity, True

    async def _apply_edit(self, work: _Work, msg: InboundMessage,
                          customer: Customer) -> IngestResult | None:
        original = await Message.filter(channel=msg.channel, external_id=msg.edit_of,
                                        customer_id=customer.id).first()
        if original is None:
            return None  # we never saw the original: store the edit as a message of its own
        edits = list(_as_list(original.meta.get("edits")))
        edits.append({"text": original.text, "replaced_at": work.now.isoformat()})
        original.meta = {**original.meta, "edits": edits}
        original.text = msg.text
        original.edited_at = work.now
        await original.save(update_fields=["meta", "text", "edited_at"])
        # The edit itself is recorded by its own external id, so a redelivery dedupes.
        await Message.create(
            customer_id=customer.id, conversation_id=original.conversation_id,
            direction=Direction.EVENT, channel=msg.channel, external_id=msg.external_id,
            text="", meta={"event": "edited", "original_id": original.id},
            author_kind="system", created_at=work.now,
        )
        work.events.append(MessageEdited(original.id, customer.id, msg.channel))
        return IngestResult(original.id, customer.id, original.conversation_id,
                            identity_id=original.identity_id)

    async def _conversation_for(
        self, work: _Work, customer: Customer, msg: InboundMessage, *, open_new: bool
    ) -> tuple[Conversation | None, bool, bool]:
        active = work.active.get(customer.id)
        if active is not None:
            return active, False, False
        rows = await sql.fetch(work.conn, "SELECT id, status FROM conversation "
                               "WHERE customer_id = ? ORDER BY id DESC LIMIT 1", [customer.id])
        if rows and rows[0]["status"] != ConversationStatus.CLOSED.value:
            # The usual case: a live conversation. A light instance is all the caller needs.
            live = Conversation(id=rows[0]["id"], customer_id=customer.id,
                                status=ConversationStatus(rows[0]["status"]))
            work.active[customer.id] = live
            return live, False, False
        latest = await Conversation.get(id=rows[0]["id"]) if rows else None
        if not open_new:
            return latest, False, False
        window = timedelta(hours=self.settings.routing.reopen_window_hours)
        if (latest is not None and latest.closed_at is not None
                and latest.closed_at + window >= work.now):
            latest.status = ConversationStatus.OPEN
            latest.closed_at = None
            latest.acknowledged = False
            latest.reopened_at = work.now  # resolution time counts from here (reports)
            await latest.save(update_fields=["status", "closed_at", "acknowledged",
                                             "reopened_at"])
            work.active[customer.id] = latest
            return latest, False, True
        conversation = await Conversation.create(
            customer_id=customer.id, channel=msg.channel, status=ConversationStatus.OPEN,
            subject=str(msg.headers.get("subject") or "")[:500] or None,
            first_response_due=work.now + timedelta(
                minutes=self.settings.routing.first_response_minutes),
            opened_at=work.now, last_inbound_at=work.now,
        )
        work.active[customer.id] = conversation
        return conversation, True, False


async def _find_identity(conn: BaseDBAsyncClient, channel: Channel, address: str,
                         active: dict[int, Conversation]) -> Identity | None:
    """The identity with its customer and live conversation, in one query.

    The hot path of ingest: the ORM's select_related plus a second query cost about five times
    as much as the query itself. A live conversation found on the way is put in `active`.
    """
    rows = await sql.fetch(
        conn,
        "SELECT i.id, i.customer_id, i.last_seen_at, i.undeliverable_reason, c.name, "
        "c.last_seen_at AS c_seen, "
        "v.id AS conv_id, v.status AS conv_status "
        "FROM identity i JOIN customer c ON c.id = i.customer_id "
        "LEFT JOIN conversation v ON v.id = (SELECT MAX(id) FROM conversation "
        "WHERE customer_id = i.customer_id) "
        "WHERE i.channel = ? AND i.address = ?", [channel.value, address])
    if not rows:
        return None
    row = rows[0]
    if row["conv_id"] is not None and row["conv_status"] != ConversationStatus.CLOSED.value:
        active[row["customer_id"]] = Conversation(
            id=row["conv_id"], customer_id=row["customer_id"],
            status=ConversationStatus(row["conv_status"]))
    identity = Identity(id=row["id"], customer_id=row["customer_id"], channel=channel,
                        address=address, last_seen_at=sql.as_datetime(row["last_seen_at"]),
                        undeliverable_reason=row["undeliverable_reason"])
    identity.customer = Customer(id=row["customer_id"], name=row["name"],
                                 last_seen_at=sql.as_datetime(row["c_seen"]))
    identity._saved_in_db = True
    identity.customer._saved_in_db = True
    return identity


def _clean(msg: InboundMessage) -> InboundMessage:
    """NUL characters out of everything stored: PostgreSQL refuses them in text and JSON, and a
    mail that can never be stored would block its mailbox."""
    if _strip_nul(msg.headers) == msg.headers and "\x00" not in (
            msg.text + msg.external_id + (msg.sender_name or "")):
        return msg
    return dataclasses.replace(
        msg, text=msg.text.replace("\x00", ""), external_id=msg.external_id.replace("\x00", ""),
        sender_name=msg.sender_name.replace("\x00", "") if msg.sender_name else None,
        headers=_strip_nul(msg.headers))


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strip_nul(v) for v in value]
    return value


def _stale(seen: datetime | None, now: datetime) -> bool:
    return seen is None or now - seen >= _SEEN_PRECISION


def _language(code: str | None) -> str:
    return (code or "").split("-")[0].lower()[:8]


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _meta(msg: InboundMessage) -> dict[str, object]:
    meta: dict[str, object] = {}
    if msg.headers:
        meta["headers"] = msg.headers
    if msg.thread_refs:
        meta["thread_refs"] = list(msg.thread_refs)
    if msg.command:
        meta["command"] = msg.command
    if msg.sender_name:
        meta["sender_name"] = msg.sender_name
    return meta
