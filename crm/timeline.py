"""Ingest: an inbound message becomes one entry in one customer's timeline, exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog
from tortoise.exceptions import IntegrityError

from crm import metrics
from crm.clock import Clock, utcnow
from crm.config import Settings
from crm.events import EventBus, MessageEdited, MessageReceived
from crm.identity import normalize_address
from crm.models import Conversation, Customer, Identity, Message
from crm.types import ConversationStatus, DeliveryStatus, Direction, InboundMessage

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class IngestResult:
    message_id: int
    customer_id: int
    conversation_id: int | None
    duplicate: bool = False
    new_customer: bool = False


class Timeline:
    """Stores what arrives (dedupe, identity, timeline, conversation, event) in one transaction."""

    def __init__(self, settings: Settings, bus: EventBus, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.bus = bus
        self.clock = clock

    async def ingest(self, msg: InboundMessage) -> IngestResult:
        """Store one message. Safe to call twice or concurrently for the same message."""
        for attempt in (1, 2, 3):
            try:
                async with self.bus.unit_of_work():
                    result = await self._ingest_one(msg)
                break
            except IntegrityError:
                # A concurrent ingest of the same message or of the same new sender won the race;
                # the next pass sees its rows and dedupes or reuses them.
                if attempt == 3:
                    raise
        if not result.duplicate:
            metrics.MESSAGES_IN.labels(channel=msg.channel.value).inc()
        return result

    async def ingest_batch(self, msgs: Sequence[InboundMessage]) -> list[IngestResult]:
        """Store many messages in one transaction (adapters that receive in batches)."""
        try:
            async with self.bus.unit_of_work():
                results = [await self._ingest_one(m) for m in msgs]
        except IntegrityError:
            # Someone raced us on one of them: fall back to one transaction per message.
            return [await self.ingest(m) for m in msgs]
        for msg, result in zip(msgs, results, strict=True):
            if not result.duplicate:
                metrics.MESSAGES_IN.labels(channel=msg.channel.value).inc()
        return results

    async def _ingest_one(self, msg: InboundMessage) -> IngestResult:
        existing = await Message.filter(channel=msg.channel, external_id=msg.external_id).first()
        if existing is not None:
            return IngestResult(existing.id, existing.customer_id, existing.conversation_id,
                                duplicate=True)
        address = normalize_address(msg.channel, msg.sender, self.settings.sms.default_region)
        now = self.clock()
        identity, customer, new_customer = await self._resolve(msg, address, now)

        if msg.edit_of is not None:
            edited = await self._apply_edit(msg, customer, now)
            if edited is not None:
                return edited

        routable = not msg.automated and msg.command is None
        conversation, new_conv, reopened = await self._conversation_for(
            customer, msg, now, open_new=routable)
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
            created_at=now,
            sent_at=msg.sent_at,
        )
        if conversation is not None and routable:
            conversation.last_inbound_at = now
            conversation.channel = msg.channel
            if conversation.status is ConversationStatus.WAITING:
                conversation.status = ConversationStatus.OPEN
            await conversation.save(update_fields=["last_inbound_at", "channel", "status"])
        await Customer.filter(id=customer.id).update(last_seen_at=now)
        await Identity.filter(id=identity.id).update(last_seen_at=now)
        await self.bus.emit(MessageReceived(
            message_id=message.id, customer_id=customer.id,
            conversation_id=conversation.id if conversation else None,
            channel=msg.channel, direction=message.direction, new_customer=new_customer,
            new_conversation=new_conv, reopened=reopened, automated=msg.automated,
            command=msg.command,
        ))
        return IngestResult(message.id, customer.id,
                            conversation.id if conversation else None,
                            new_customer=new_customer)

    async def _resolve(self, msg: InboundMessage, address: str,
                       now: object) -> tuple[Identity, Customer, bool]:
        identity = await Identity.filter(channel=msg.channel, address=address).first()
        if identity is not None:
            customer = await Customer.get(id=identity.customer_id)
            if msg.sender_name and not customer.name:
                customer.name = msg.sender_name[:200]
                await customer.save(update_fields=["name"])
            return identity, customer, False
        customer = await Customer.create(
            name=(msg.sender_name or None) and msg.sender_name[:200],
            language=_language(msg.language) or None,
        )
        identity = await Identity.create(
            customer_id=customer.id, channel=msg.channel, address=address,
            display_name=(msg.sender_name or "")[:200] or None,
        )
        log.info("customer.created", customer_id=customer.id, channel=msg.channel.value)
        return identity, customer, True

    async def _apply_edit(self, msg: InboundMessage, customer: Customer,
                          now: object) -> IngestResult | None:
        original = await Message.filter(channel=msg.channel, external_id=msg.edit_of,
                                        customer_id=customer.id).first()
        if original is None:
            return None  # we never saw the original: store the edit as a message of its own
        edits = list(original.meta.get("edits", []))  # type: ignore[call-overload]
        edits.append({"text": original.text, "replaced_at": str(now)})
        original.meta = {**original.meta, "edits": edits}
        original.text = msg.text
        original.edited_at = now  # type: ignore[assignment]
        await original.save(update_fields=["meta", "text", "edited_at"])
        # The edit itself is recorded by its own external id, so a redelivery dedupes.
        await Message.create(
            customer_id=customer.id, conversation_id=original.conversation_id,
            direction=Direction.EVENT, channel=msg.channel, external_id=msg.external_id,
            text="", meta={"event": "edited", "original_id": original.id},
            author_kind="system", created_at=now,
        )
        await self.bus.emit(MessageEdited(original.id, customer.id, msg.channel))
        return IngestResult(original.id, customer.id, original.conversation_id)

    async def _conversation_for(
        self, customer: Customer, msg: InboundMessage, now: object, *, open_new: bool
    ) -> tuple[Conversation | None, bool, bool]:
        latest = await Conversation.filter(customer_id=customer.id).order_by("-id").first()
        if latest is not None and latest.status is not ConversationStatus.CLOSED:
            return latest, False, False
        if not open_new:
            return latest, False, False
        window = timedelta(hours=self.settings.routing.reopen_window_hours)
        if (latest is not None and latest.closed_at is not None
                and latest.closed_at + window >= now):  # type: ignore[operator]
            latest.status = ConversationStatus.OPEN
            latest.closed_at = None
            latest.acknowledged = False
            await latest.save(update_fields=["status", "closed_at", "acknowledged"])
            return latest, False, True
        conversation = await Conversation.create(
            customer_id=customer.id, channel=msg.channel, status=ConversationStatus.OPEN,
            subject=(msg.headers.get("subject") or None),
            first_response_due=now + timedelta(  # type: ignore[operator]
                minutes=self.settings.routing.first_response_minutes),
            opened_at=now,
        )
        return conversation, True, False


def _language(code: str | None) -> str:
    return (code or "").split("-")[0].lower()[:8]


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
