"""Talking to a customer: replies, notes, and a conversation's life (assign, close, reopen)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from crm.clock import Clock, utcnow
from crm.consent import Consents
from crm.errors import Conflict, Erased, NotFound, SendRejected
from crm.events import ConversationChanged, EventBus, MessageQueued
from crm.files import FileLinks
from crm.i18n import Phrase
from crm.models import (
    AddressCheck,
    AuditLog,
    Conversation,
    Customer,
    Identity,
    Manager,
    Message,
    Outbox,
)
from crm.outbox import OutboxService
from crm.types import (
    Attachment,
    Channel,
    Choice,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    OutboundMessage,
    Priority,
)

log = structlog.get_logger(__name__)

# Whose message answers the customer: a manager's, or the shop's through the API (its system,
# or a person using it). Either ends the customer's wait as a manager's reply does: the
# conversation waits on the customer, its deadline ends. The bot's messages do not: the customer
# is still waiting for a person.
ANSWERING = frozenset({"manager", "api"})


class Conversations:
    def __init__(self, bus: EventBus, outbox: OutboxService, clock: Clock = utcnow,
                 consent: Consents | None = None, links: FileLinks | None = None) -> None:
        self.bus = bus
        self.outbox = outbox
        self.clock = clock
        self.consent = consent
        self.links = links
        # Whether a web chat visitor (by address) has the chat open in this process; set by
        # the web chat channel (channels/webchat). None: nobody is ever taken to be there.
        self.on_page: Callable[[str], bool] | None = None

    async def send(
        self,
        customer_id: int,
        text: str,
        *,
        channel: Channel | None = None,
        author: Manager | None = None,
        author_kind: str = "manager",
        priority: int = Priority.LIVE,
        idempotency_key: str | None = None,
        options: dict[str, object] | None = None,
        attachments: tuple[Attachment, ...] = (),
        html: str | None = None,
        subject: str | None = None,
        meta: dict[str, object] | None = None,
        choices: Sequence[Choice] = (),
        language: str | None = None,
        identity_id: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """Queue a message to a customer on `channel` (default: the one they last used).

        The timeline entry and the outbox row commit together. Raises SendRejected when the
        customer has no deliverable address on that channel, or the channel's consent rules
        forbid it (crm/consent.py `refusal`). `choices` are answers the customer can pick (the
        channel renders them); the timeline keeps them, so a bare number that answers them can
        be read back (bot/intents.py). `identity_id`: this address of theirs (an answer goes
        where the question came from), if it is still usable. With an `actor` (the API, the
        console) the send is also written to the audit log.
        """
        async with self.bus.unit_of_work():
            if idempotency_key:
                existing = await _message_by_key(idempotency_key)
                if existing is not None:
                    return existing
            customer = await Customer.get_or_none(id=customer_id)
            if customer is None or customer.erased_at is not None:
                raise NotFound(Phrase("customer_missing", id=customer_id))
            identity = await self._target(customer, channel, identity_id)
            if self.consent is not None:
                refusal = await self.consent.refusal(
                    customer.id, identity.channel, author_kind,
                    answers_customer=bool((meta or {}).get("dialogue")))
                if refusal is not None:
                    raise SendRejected(refusal)
            conversation = await Conversation.filter(customer_id=customer.id).order_by(
                "-id").first()
            last_in = await Message.filter(customer_id=customer.id, channel=identity.channel,
                                           direction=Direction.IN).order_by("-id").first()
            reply_to: str | None = None
            refs: tuple[str, ...] = ()
            subj = subject
            if last_in is not None:
                reply_to = last_in.external_id
                refs = tuple(str(r) for r in _as_list(last_in.meta.get("thread_refs")))
                if subj is None:
                    headers = last_in.meta.get("headers") or {}
                    subj = headers.get("subject") if isinstance(headers, dict) else None
            now = self.clock()
            message = await Message.create(
                customer_id=customer.id, conversation_id=conversation.id if conversation else None,
                identity_id=identity.id, direction=Direction.OUT, channel=identity.channel,
                text=text, attachments=[a.to_json() for a in attachments],
                meta={**(meta or {}), **({"idempotency_key": idempotency_key}
                                         if idempotency_key else {}),
                      **({"choices": [c.to_json() for c in choices]} if choices else {})},
                author_id=author.id if author else None, author_kind=author_kind,
                delivery_status=DeliveryStatus.QUEUED, created_at=now, reply_to=reply_to,
            )
            channel_options = dict(options or {})
            if author_kind in ("bot", "system"):
                # RFC 3834: what no person wrote says so, so other robots do not answer it.
                channel_options.setdefault("auto_submitted", "auto-replied")
            if self.links is not None:  # a channel that cannot carry the file sends its link
                attachments = tuple([await self.links.attach(a, message.id, i)
                                     for i, a in enumerate(attachments)])
            row = await self.outbox.enqueue(
                OutboundMessage(channel=identity.channel, address=identity.address, text=text,
                                subject=subj, html=html, reply_to=reply_to, thread_refs=refs,
                                attachments=attachments, options=channel_options,
                                choices=tuple(choices), language=language),
                idempotency_key=idempotency_key or f"message:{message.id}",
                priority=priority, customer_id=customer.id, message_id=message.id,
            )
            if row.message_id != message.id and row.message_id is not None:
                # A send with the same key committed while this one ran (PostgreSQL, read
                # committed): that one is the message; this copy goes.
                await message.delete()
                return await Message.get(id=row.message_id)
            answers = author_kind in ANSWERING
            if conversation is not None and (answers or author_kind == "bot"):
                conversation.last_outbound_at = now
                update = ["last_outbound_at"]
                if answers:
                    conversation.first_response_due = None
                    update.append("first_response_due")
                    if conversation.status is ConversationStatus.OPEN:
                        conversation.status = ConversationStatus.WAITING
                        update.append("status")
                await conversation.save(update_fields=update)
            if actor is not None:
                await AuditLog.create(actor=actor, action="message.queued",
                                      customer_id=customer.id,
                                      detail={"message_id": message.id,
                                              "channel": identity.channel.value})
            await self.bus.emit(MessageQueued(
                message_id=message.id, customer_id=customer.id,
                conversation_id=conversation.id if conversation else None,
                channel=identity.channel, direction=Direction.OUT,
                author_id=author.id if author else None, outbox_id=row.id, answers=answers))
            return message

    async def _target(self, customer: Customer, channel: Channel | None,
                      identity_id: int | None = None) -> Identity:
        if identity_id is not None:
            chosen = await Identity.filter(id=identity_id, customer_id=customer.id,
                                           undeliverable_reason=None).first()
            if chosen is not None and (channel is None or chosen.channel is channel):
                return chosen
        if channel is None:
            last = await Message.filter(customer_id=customer.id, direction=Direction.IN)\
                .order_by("-id").first()
            channel = last.channel if last else None
            if last is not None and channel is Channel.WEBCHAT:
                asked = await self._asked_for_answers(customer.id, last)
                if asked is not None:
                    return asked
        query = Identity.filter(customer_id=customer.id)
        if channel is not None:
            query = query.filter(channel=channel)
        identities = await query.order_by("-last_seen_at", "-id")
        if not identities:
            raise SendRejected(
                Phrase("no_address_on", customer=customer.label, channel=channel.value)
                if channel else Phrase("no_address", customer=customer.label))
        usable = [i for i in identities if i.undeliverable_reason is None]
        if not usable:
            first = identities[0]
            raise SendRejected(Phrase("unreachable", customer=customer.label,
                                      channel=first.channel.value,
                                      reason=first.undeliverable_reason or ""))
        return usable[0]

    async def _asked_for_answers(self, customer_id: int, last: Message) -> Identity | None:
        """The address a web chat visitor, no longer on the page, confirmed for answers ("Get
        the answer by email or SMS") after their last message in the chat. Writing in the chat
        again brings the answers back to the chat."""
        check = await AddressCheck.filter(customer_id=customer_id,
                                          confirmed_at__gt=last.created_at
                                          ).order_by("-confirmed_at").first()
        if check is None:
            return None
        if self.on_page is not None and last.identity_id is not None:
            visitor = await Identity.filter(id=last.identity_id).first()
            if visitor is not None and self.on_page(visitor.address):
                return None
        return await Identity.filter(customer_id=customer_id, channel=check.channel,
                                     address=check.address, undeliverable_reason=None).first()

    async def note(self, customer_id: int, text: str, author: Manager | None,
                   actor: str | None = None) -> Message:
        """An internal note: in the timeline, never sent. Written by a manager, or by an
        `actor` such as an API key (audited)."""
        async with self.bus.unit_of_work():
            customer = await Customer.get_or_none(id=customer_id)
            if customer is None:
                raise NotFound(Phrase("customer_missing", id=customer_id))
            if customer.erased_at is not None:
                raise Erased(Phrase("note_erased", id=customer_id))
            conversation = await Conversation.filter(customer_id=customer_id).order_by(
                "-id").first()
            last = await Message.filter(customer_id=customer_id).order_by("-id").first()
            message = await Message.create(
                customer_id=customer_id,
                conversation_id=conversation.id if conversation else None,
                direction=Direction.NOTE, channel=last.channel if last else Channel.TELEGRAM,
                text=text, author_id=author.id if author else None,
                author_kind="manager" if author is not None or actor is None else "api",
                meta={"actor": actor} if actor else {},
                delivery_status=DeliveryStatus.SENT, created_at=self.clock())
            if actor is not None:
                await AuditLog.create(actor=actor, action="note.added", customer_id=customer_id,
                                      detail={"message_id": message.id})
            await self.bus.emit(MessageQueued(
                message_id=message.id, customer_id=customer_id,
                conversation_id=conversation.id if conversation else None,
                channel=message.channel, direction=Direction.NOTE,
                author_id=author.id if author else None, outbox_id=None))
            return message

    async def current(self, customer_id: int) -> Conversation | None:
        return await Conversation.filter(customer_id=customer_id).order_by("-id").first()

    async def _current_for_change(self, customer_id: int,
                                  expected: int | None) -> Conversation:
        """The customer's latest conversation, which a change acts on; with `expected`, only if
        it is still that one (a new conversation may have opened since the caller looked)."""
        conversation = await self.current(customer_id)
        if conversation is None:
            raise NotFound(Phrase("no_conversation", id=customer_id))
        if expected is not None and conversation.id != expected:
            raise Conflict(Phrase("not_latest", expected=expected, id=conversation.id))
        return conversation

    async def set_status(self, customer_id: int, status: ConversationStatus,
                         actor: str, *, conversation_id: int | None = None) -> Conversation:
        async with self.bus.unit_of_work():
            conversation = await self._current_for_change(customer_id, conversation_id)
            fields = ["status", "closed_at"]
            if conversation.status is ConversationStatus.CLOSED \
                    and status is not ConversationStatus.CLOSED:
                conversation.reopened_at = self.clock()  # resolution time counts from here
                fields.append("reopened_at")
            conversation.status = status
            conversation.closed_at = self.clock() if status is ConversationStatus.CLOSED else None
            await conversation.save(update_fields=fields)
            await self._event(conversation, Phrase("event_status",
                                                   state=Phrase(f"state_{status.value}")), actor)
            return conversation

    async def assign(self, customer_id: int, manager: Manager | None,
                     actor: str, *, conversation_id: int | None = None) -> Conversation:
        async with self.bus.unit_of_work():
            conversation = await self._current_for_change(customer_id, conversation_id)
            conversation.assignee_id = manager.id if manager else None
            await conversation.save(update_fields=["assignee_id"])
            said = Phrase("event_assigned", name=manager.name) if manager \
                else Phrase("event_unassigned")
            await self._event(conversation, said, actor, action="assign",
                              detail={"manager_id": manager.id if manager else None},
                              change="assigned")
            return conversation

    async def _event(self, conversation: Conversation, said: Phrase, actor: str,
                     action: str | None = None, detail: dict[str, object] | None = None,
                     change: str = "status") -> None:
        # The text in English for the API, the command line and exports; the phrase for the
        # managers' chat, which shows it in the reader's language.
        await Message.create(
            customer_id=conversation.customer_id, conversation_id=conversation.id,
            direction=Direction.EVENT, channel=conversation.channel, text=said.render(),
            author_kind="system", meta={"actor": actor, "phrase": said.to_json()},
            created_at=self.clock())
        await AuditLog.create(actor=actor, action=action or f"conversation.{conversation.status}",
                              customer_id=conversation.customer_id,
                              detail={"conversation_id": conversation.id, **(detail or {})})
        await self.bus.emit(ConversationChanged(
            conversation_id=conversation.id,
            customer_id=conversation.customer_id,
            status=conversation.status,
            assignee_id=conversation.assignee_id,
            actor=actor,
            change=change))


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


async def _message_by_key(key: str) -> Message | None:
    row = await Outbox.filter(idempotency_key=key).first()
    if row is None or row.message_id is None:
        return None
    return await Message.get_or_none(id=row.message_id)
