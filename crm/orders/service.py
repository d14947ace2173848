"""Orders: create or update one with its customer, move it to a status, tell the customer.

Every status an order enters, in one unit of work:
- an `OrderEvent` (its history) and an event in the customer's timeline, which the managers'
  chat mirrors into the customer's topic (the `MessageQueued` of the timeline entry);
- if the status notifies, one message to the customer through the outbox, on the channel they
  last wrote on (else another address of theirs) where order updates are allowed (consent,
  `notifications`), with a signed link to the order's status page. Its idempotency key is the
  order and the status, so the same change posted twice (or a retried request) tells once;
- `OrderStatusChanged`, which the webhooks (`order.status_changed`) listen to.

Notifications go in the outbox's NOTIFY lane: not LIVE, which is for people waiting on an answer
right now (a manager's reply, the bot's answer to "ORDER 1042") and must not queue behind a
shop's batch of a thousand "shipped"; not BULK, since campaigns must not delay a transactional
message. NOTIFY is served after live and before bulk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from crm import links
from crm.actors import actor_named
from crm.clock import Clock, utcnow
from crm.config import Settings
from crm.consent import Consents
from crm.conversations import Conversations
from crm.customers import Customers
from crm.errors import Conflict, NotFound, SendRejected
from crm.events import EventBus, MessageQueued, OrderStatusChanged
from crm.i18n import Phrase
from crm.identity import normalize_typed_address
from crm.models import AuditLog, Conversation, Customer, Identity, Message, Order, OrderEvent
from crm.orders import texts
from crm.orders.numbers import InvalidOrder, check_number, number_key, to_minor
from crm.orders.queries import OrderQueries
from crm.orders.statuses import Statuses
from crm.orders.views import OrderView
from crm.types import Channel, ConsentKind, Direction, Priority

log = structlog.get_logger(__name__)

LINK_PURPOSE = "order"
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CustomerRef:
    """Whose order it is: a customer id, or addresses to match (or create them by)."""

    customer_id: int | None = None
    identities: tuple[tuple[Channel, str], ...] = ()
    name: str | None = None


@dataclass(frozen=True, slots=True)
class OrderInput:
    """What a PUT (or an import row) says about an order; None leaves a field as it is."""

    customer: CustomerRef | None = None
    status: str | None = None
    external_number: str | None = None
    items: list[dict[str, Any]] | None = None
    # As written ("49.90"): read in `currency`, else the order's own (a JPY order's "1200" is
    # 1200 yen, not 12.00).
    amount: str | None = None
    currency: str | None = None
    placed_at: datetime | None = None
    note: str = ""
    at: datetime | None = None  # when the status was entered (default: now)


@dataclass(frozen=True, slots=True)
class Saved:
    order: OrderView
    created: bool
    changed: bool  # it entered a new status


class Orders:
    def __init__(self, settings: Settings, bus: EventBus, conversations: Conversations,
                 consent: Consents, customers: Customers, queries: OrderQueries,
                 signer: links.Signer, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.bus = bus
        self.conversations = conversations
        self.consent = consent
        self.customers = customers
        self.queries = queries
        self.clock = clock
        self.statuses = Statuses(settings.orders.statuses)
        self.signer = signer

    # Links ---------------------------------------------------------------------------------

    async def link(self, order_id: int, customer_id: int) -> str:
        """The status page of an order, for its customer: signed, valid for `[orders]
        link_days`. The link names the customer too: should the shop move the order to
        someone else, the first customer's links stop showing it."""
        expires = self.clock() + timedelta(days=self.settings.orders.link_days)
        token = await self.signer.sign(LINK_PURPOSE, f"{order_id}.{customer_id}", expires)
        return f"{self.settings.http.public_url.rstrip('/')}/o/{token}"

    async def order_of_link(self, token: str) -> OrderView | None:
        """The order a genuine, unexpired link shows (LinkTampered, LinkExpired otherwise);
        None when it is gone, belongs to someone else now, or its customer was erased."""
        order_id, _, customer_id = (await self.signer.verify(LINK_PURPOSE, token)).partition(".")
        if not (order_id.isdigit() and customer_id.isdigit()):
            return None
        order = await self.queries.by_id(int(order_id))
        if order is None:
            return None
        try:  # the customer the link was made for, or whom they were merged into
            customer = await self.customers.get(int(customer_id))
        except NotFound:
            return None
        if customer.id != order.customer_id or customer.erased_at is not None:
            return None
        return order

    # Writing -------------------------------------------------------------------------------

    async def put(self, number: str, data: OrderInput, *, source: str, actor: str,
                  notify: bool = True) -> Saved:
        """Create the order or update it; a new status goes through `enter`."""
        number = check_number(number)
        if data.status is not None:
            self.statuses.get(data.status)
        for attempt in (1, 2):
            try:
                async with self.bus.unit_of_work() as tx:
                    order = await _locked(tx, number_key(number))
                    if order is None:
                        created, changed = True, True
                        await self._create(number, data, source, actor, notify)
                    else:
                        created = False
                        changed = await self._update(order, data, source, actor, notify)
                break
            except IntegrityError:
                if attempt == 2:  # the same number made twice at once: the second updates
                    raise
        return Saved(await self.queries.by_number(number), created, changed)

    async def set_status(self, number: str, status: str, *, note: str = "",
                         at: datetime | None = None, source: str, actor: str,
                         notify: bool = True) -> Saved:
        """Move an order to `status`; the status it has already is no change (no event, no
        message)."""
        code = self.statuses.get(status).code
        async with self.bus.unit_of_work() as tx:
            order = await _locked(tx, number_key(check_number(number)))
            if order is None:
                raise NotFound(f"order {number} does not exist")
            changed = order.status != code
            if changed:
                self.statuses.check_move(order.number, order.status, code)
                previous = order.status
                order.status, order.status_changed_at = code, at or self.clock()
                await order.save(update_fields=["status", "status_changed_at", "updated_at"])
                await self.enter(order, previous, note=note, at=order.status_changed_at,
                                 source=source, actor=actor, notify=notify)
        return Saved(await self.queries.by_number(order.number), False, changed)

    async def _create(self, number: str, data: OrderInput, source: str, actor: str,
                      notify: bool) -> None:
        if data.customer is None:
            raise InvalidOrder("customer", "a new order needs its customer: a customer_id, or "
                                           "an email, phone or telegram_id")
        customer_id = await self.customer_for(data.customer, actor)
        at = data.at or self.clock()
        order = await Order.create(
            number=number, number_key=number_key(number), external_number=data.external_number,
            customer_id=customer_id, status=self.statuses.get(data.status or
                                                               self.statuses.initial).code,
            items=data.items or [], currency=data.currency,
            amount_minor=to_minor(data.amount, data.currency) if data.amount is not None
            else None,
            placed_at=data.placed_at or at, status_changed_at=at)
        await AuditLog.create(actor=actor[:200], action="order.created", customer_id=customer_id,
                              detail={"number": number, "source": source})
        await self.enter(order, None, note=data.note, at=at, source=source, actor=actor,
                         notify=notify)

    async def _update(self, order: Order, data: OrderInput, source: str, actor: str,
                      notify: bool) -> bool:
        fields: list[str] = []
        if data.customer is not None:
            customer_id = await self.customer_for(data.customer, actor)
            if customer_id != order.customer_id:
                order.customer_id = customer_id
                fields.append("customer_id")
        amount = to_minor(data.amount, data.currency or order.currency) \
            if data.amount is not None else None
        for name in ("external_number", "items", "amount_minor", "currency", "placed_at"):
            value = amount if name == "amount_minor" else getattr(data, name)
            if value is not None and value != getattr(order, name):
                setattr(order, name, value)
                fields.append(name)
        previous = order.status
        code = self.statuses.get(data.status).code if data.status is not None else previous
        if code != previous:
            self.statuses.check_move(order.number, previous, code)
            order.status, order.status_changed_at = code, data.at or self.clock()
            fields += ["status", "status_changed_at"]
        if not fields:
            return False
        await order.save(update_fields=[*fields, "updated_at"])
        await AuditLog.create(actor=actor[:200], action="order.updated",
                              customer_id=order.customer_id,
                              detail={"number": order.number, "fields": sorted(fields)})
        if code == previous:
            return False
        await self.enter(order, previous, note=data.note, at=order.status_changed_at,
                         source=source, actor=actor, notify=notify)
        return True

    async def enter(self, order: Order, previous: str | None, *, note: str, at: datetime,
                    source: str, actor: str, notify: bool = True) -> None:
        """Record that `order` entered its (already saved) status; call in a unit of work."""
        status = order.status
        event = await OrderEvent.create(order_id=order.id, status=status,
                                        previous_status=previous, source=source,
                                        actor=actor[:200], note=note, happened_at=at)
        target: Channel | None = None
        why: Phrase | None = None
        if notify and self.statuses.get(status).notify:
            target, why = await self._target(order.customer_id)
        text, said = await self.event_entry(order.number, previous, status, actor, note, why)
        await self._timeline(order, text, said, status, actor)
        if target is not None:
            await self._notify(order, status, target, event.id)
        await self.bus.emit(OrderStatusChanged(order.id, order.customer_id, order.number,
                                               status, previous, source, actor, note, at))

    async def event_entry(self, number: str, previous: str | None, status: str, actor: str,
                          note: str = "", why: Phrase | None = None) -> tuple[str, Phrase]:
        """The timeline's line for a status entered: the English text for the API, exports and
        the command line (the actor as its id), and the phrase for the managers' chat, in the
        reader's language."""
        label = self.statuses.label
        text = (f"Order {number}: {label(previous)} → {label(status)}" if previous
                else f"Order {number} placed: {label(status)}") + f" ({actor})."
        if note:
            text += f" Note: {note}"
        if why:
            text += f" The customer was not told: {why.render()}."
        labels, who = self.statuses.labels, await actor_named(actor)
        head = Phrase("event_order_moved", number=number, previous=labels(previous),
                      status=labels(status), actor=who) if previous else \
            Phrase("event_order_placed", number=number, status=labels(status), actor=who)
        said = Phrase("event_order", head=head,
                      note=Phrase("event_order_note", note=note) if note else "",
                      untold=Phrase("event_order_untold", why=why) if why else "")
        return text, said

    async def _timeline(self, order: Order, text: str, said: Phrase, status: str,
                        actor: str) -> None:
        conversation = await Conversation.filter(customer_id=order.customer_id).order_by(
            "-id").first()
        last = await Message.filter(customer_id=order.customer_id).order_by("-id").first()
        channel = conversation.channel if conversation else last.channel if last \
            else Channel.TELEGRAM
        message = await Message.create(
            customer_id=order.customer_id,
            conversation_id=conversation.id if conversation else None,
            direction=Direction.EVENT, channel=channel, text=text, author_kind="system",
            meta={"order": order.number, "status": status, "actor": actor,
                  "phrase": said.to_json()},
            created_at=self.clock())
        await self.bus.emit(MessageQueued(
            message_id=message.id, customer_id=order.customer_id,
            conversation_id=message.conversation_id, channel=channel,
            direction=Direction.EVENT, author_id=None, outbox_id=None))

    async def _target(self, customer_id: int) -> tuple[Channel | None, Phrase | None]:
        """The channel to tell the customer on, or None and why not."""
        last = await Message.filter(customer_id=customer_id, direction=Direction.IN).order_by(
            "-id").first()
        identities = sorted(
            await Identity.filter(customer_id=customer_id, undeliverable_reason=None),
            # Most recently seen first; never seen (an address from the shop) last, on both
            # databases (they sort NULL differently).
            key=lambda i: (i.last_seen_at is not None, i.last_seen_at or _NEVER, i.id),
            reverse=True)
        channels = [c for c in dict.fromkeys(
            [*([last.channel] if last else []), *(i.channel for i in identities)])
            if c is not Channel.WEBHOOK and any(i.channel is c for i in identities)]
        if not channels:
            return None, Phrase("untold_no_address")
        for channel in channels:
            if await self.consent.allows(customer_id, ConsentKind.NOTIFICATIONS, channel):
                return channel, None
        return None, Phrase("untold_updates_off")

    async def _notify(self, order: Order, status: str, channel: Channel,
                      event_id: int) -> None:
        # Keyed by the event: a retried request finds the change made and enters nothing, while
        # an order that comes back to a status later (out for delivery twice) is told again.
        customer = await Customer.get(id=order.customer_id)
        language = customer.language or self.settings.bot.default_language
        link = await self.link(order.id, order.customer_id)
        text = texts.notice(order.number, status, self.statuses, channel, language, link,
                            self.settings.bot.company_name)
        subject = texts.notice_subject(order.number, status, self.statuses, language) \
            if channel is Channel.EMAIL else None
        try:
            await self.conversations.send(
                customer.id, text, channel=channel, author_kind="system",
                priority=Priority.NOTIFY, idempotency_key=f"order:{order.id}:{event_id}",
                subject=subject, language=language,
                meta={"kind": "order_status", "order": order.number, "status": status})
        except SendRejected as e:  # e.g. the address became unreachable meanwhile
            log.info("order.not_notified", order=order.number, reason=str(e))

    # Customers -----------------------------------------------------------------------------

    async def customer_for(self, ref: CustomerRef, actor: str) -> int:
        """The customer an order belongs to: by id, or matched by any of its (normalised)
        addresses; created with them all when none matches. Addresses of two different
        customers are a Conflict: merge them first.

        A shop's data never adds an address to a customer we know: it is what a buyer typed at
        checkout, and anyone can type someone else's email beside their own phone. Linked, that
        phone would ask for (and be told about) the other person's orders. New addresses come
        from the customer themselves (writing from them, sharing a contact) or a merge."""
        if ref.customer_id is not None:
            return (await self.customers.live(ref.customer_id)).id
        region = self.settings.sms.default_region
        addresses = list(dict.fromkeys(
            (channel, normalize_typed_address(channel, raw, region))
            for channel, raw in ref.identities))
        if not addresses:
            raise InvalidOrder("customer", "give a customer_id, or an email, phone or "
                                           "telegram_id")
        owners: dict[tuple[Channel, str], int] = {}
        for channel, address in addresses:
            found = await Identity.filter(channel=channel, address=address).first()
            if found is not None:
                owners[(channel, address)] = found.customer_id
        ids = sorted(set(owners.values()))
        if len(ids) > 1:
            who = ", ".join(f"#{i}" for i in ids)
            raise Conflict(f"the addresses lead to different customers ({who}): merge them "
                           "first (crm customers merge)")
        if not ids:
            customer = await self.customers.create(identities=addresses, actor=actor,
                                                   name=ref.name)
            return customer.id
        customer_id = ids[0]
        if ref.name:
            await Customer.filter(id=customer_id, name=None).update(name=ref.name)
        return customer_id


async def _locked(tx: BaseDBAsyncClient, key: str) -> Order | None:
    """The order, its row locked until the unit of work ends (PostgreSQL; SQLite has one
    writer anyway), so two changes of one order never interleave."""
    return await Order.filter(number_key=key).select_for_update().using_db(tx).first()
