"""Customers as a whole: find, link identities, merge two into one, export, forget.

Tables outside this module that hold a customer's data (tasks, consent; orders and campaigns to
come) follow the customer through `CustomerData` handlers that the core hands in
(crm/services.py), so merge, export and forget cover every one of them. A test walks the models
and fails when one that references a customer is covered by neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

import structlog
from tortoise.expressions import Q
from tortoise.models import Model

from crm.clock import Clock, utcnow
from crm.errors import AddressTaken, CrmError, Erased, NotFound
from crm.events import ConversationChanged, CustomersMerged, EventBus
from crm.i18n import Phrase
from crm.identity import normalize_address, normalize_typed_address
from crm.models import (
    AuditLog,
    Conversation,
    Customer,
    CustomerTopic,
    Identity,
    Message,
    Outbox,
)
from crm.types import Channel, ConversationStatus, OutboxState

log = structlog.get_logger(__name__)

ERASED = "[erased]"
# The tables this module moves, exports and erases itself.
OWN_TABLES: tuple[type[Model], ...] = (Identity, Message, Conversation, Outbox, CustomerTopic,
                                       AuditLog)


class CustomerData(Protocol):
    """Another table of a customer's data: moved on merge, exported, erased on forget.

    A handler may also declare `parts`: tables that reach the customer only through `model`
    (OrderEvent through Order), which it exports and erases with it; a merge moves them with
    their parent row.
    """

    @property
    def model(self) -> type[Model]: ...

    async def move(self, source_id: int, target_id: int) -> dict[str, int]: ...

    async def export(self, customer_id: int) -> dict[str, Any]: ...

    async def forget(self, customer_id: int) -> dict[str, int]: ...


class Customers:
    def __init__(self, bus: EventBus, default_region: str = "US",
                 clock: Clock = utcnow, related: Sequence[CustomerData] = ()) -> None:
        self.bus = bus
        self.default_region = default_region
        self.clock = clock
        self.related = list(related)

    @property
    def covered(self) -> set[type[Model]]:
        """Every table whose rows follow the customer (the completeness test reads it)."""
        return {*OWN_TABLES, *(r.model for r in self.related),
                *(part for r in self.related for part in getattr(r, "parts", ()))}

    async def get(self, customer_id: int) -> Customer:
        customer = await Customer.get_or_none(id=customer_id)
        if customer is None:
            raise NotFound(Phrase("customer_missing", id=customer_id))
        while customer.merged_into_id is not None:
            customer = await Customer.get(id=customer.merged_into_id)
        return customer

    async def live(self, customer_id: int) -> Customer:
        """The customer, to write to: an erased one is refused, so that nothing personal is
        stored about them again under the old record."""
        customer = await self.get(customer_id)
        if customer.erased_at is not None:
            raise Erased(Phrase("customer_erased", id=customer.id))
        return customer

    async def find(self, query: str = "", limit: int = 50, offset: int = 0) -> list[Customer]:
        qs = Customer.filter(merged_into_id=None)
        if query:
            ids = await Identity.filter(address__icontains=query).limit(1000).values_list(
                "customer_id", flat=True)
            qs = qs.filter(Q(name__icontains=query) | Q(id__in=list(ids)))
        return await qs.order_by("-last_seen_at", "-id").offset(offset).limit(limit)

    async def by_address(self, channel: Channel, raw: str) -> Customer | None:
        address = normalize_address(channel, raw, self.default_region)
        identity = await Identity.filter(channel=channel, address=address).first()
        return await self.get(identity.customer_id) if identity else None

    async def link_identity(self, customer_id: int, channel: Channel, raw: str,
                            actor: str = "customer") -> Customer:
        """Give a customer another address; if it belongs to someone else, the two are merged."""
        address = normalize_typed_address(channel, raw, self.default_region)
        async with self.bus.unit_of_work():
            customer = await self.live(customer_id)
            identity = await Identity.filter(channel=channel, address=address).first()
            if identity is None:
                await Identity.create(customer_id=customer.id, channel=channel, address=address,
                                      last_seen_at=self.clock())
                await AuditLog.create(actor=actor, action="identity.linked",
                                      customer_id=customer.id, detail={"channel": channel.value})
                return customer
            if identity.customer_id == customer.id:
                return customer
            # The older customer survives: their history is usually the longer one.
            other = await self.get(identity.customer_id)
            source, target = (customer, other) if other.id < customer.id else (other, customer)
            return await self.merge(source.id, target.id, actor=actor)

    async def merge(self, source_id: int, target_id: int, actor: str = "cli") -> Customer:
        """Move everything of `source` to `target`; `source` remains as a pointer, audited."""
        if source_id == target_id:
            raise CrmError("cannot merge a customer into itself")
        async with self.bus.unit_of_work():
            source = await self.get(source_id)
            target = await self.get(target_id)
            if source.id == target.id:
                raise CrmError(f"customer #{source_id} was already merged into #{target.id}")
            moved = {
                "identities": await Identity.filter(customer_id=source.id).update(
                    customer_id=target.id),
                "messages": await Message.filter(customer_id=source.id).update(
                    customer_id=target.id),
                "conversations": await Conversation.filter(customer_id=source.id).update(
                    customer_id=target.id),
                "outbox": await Outbox.filter(customer_id=source.id).update(
                    customer_id=target.id),
            }
            for handler in self.related:
                moved.update(await handler.move(source.id, target.id))
            # Topics in the managers' chat: where the target has none, the source's becomes the
            # target's (replies there keep reaching the customer); otherwise the target's wins.
            for topic in await CustomerTopic.filter(customer_id=source.id):
                if await CustomerTopic.filter(customer_id=target.id,
                                              chat_id=topic.chat_id).exists():
                    await topic.delete()
                else:
                    topic.customer_id = target.id
                    await topic.save(update_fields=["customer_id"])
            # One live conversation per customer: the newest stays, older live ones close.
            live = await Conversation.filter(
                customer_id=target.id,
                status__in=[ConversationStatus.OPEN, ConversationStatus.WAITING]).order_by("-id")
            for older in live[1:]:
                older.status, older.closed_at = ConversationStatus.CLOSED, self.clock()
                older.first_response_due = None
                await older.save(update_fields=["status", "closed_at", "first_response_due"])
                # Closed like any other (its deadlines end, webhooks hear of it), but no survey:
                # the customer's conversation goes on in the survivor's.
                await self.bus.emit(ConversationChanged(
                    older.id, target.id, ConversationStatus.CLOSED, older.assignee_id, actor,
                    change="merged"))
            moved["conversations_closed"] = len(live[1:])
            target.tags = sorted(set(target.tags) | set(source.tags))
            target.attributes = {**source.attributes, **target.attributes}
            target.name = target.name or source.name
            target.language = target.language or source.language
            target.lead_source = target.lead_source or source.lead_source
            if source.last_seen_at and (not target.last_seen_at
                                        or source.last_seen_at > target.last_seen_at):
                target.last_seen_at = source.last_seen_at
            await target.save()
            source.merged_into_id = target.id
            await source.save(update_fields=["merged_into_id"])
            await AuditLog.create(actor=actor, action="customer.merged", customer_id=target.id,
                                  detail={"source_id": source.id, "moved": moved})
            await self.bus.emit(CustomersMerged(source.id, target.id))
            log.info("customer.merged", source=source.id, target=target.id, moved=moved)
            return target

    async def create(self, *, identities: Sequence[tuple[Channel, str]] = (),
                     actor: str, **fields: Any) -> Customer:
        """A customer entered by hand or by another system, with their addresses; an address
        that already leads to someone raises AddressTaken and nothing is stored."""
        # Typed by a person or another system: an SMS address must be a phone number.
        addresses = [(ch, normalize_typed_address(ch, raw, self.default_region))
                     for ch, raw in identities]
        async with self.bus.unit_of_work():
            for channel, address in dict.fromkeys(addresses):
                await self._free(channel, address)
            customer = await Customer.create(**fields)
            for channel, address in dict.fromkeys(addresses):
                await Identity.create(customer_id=customer.id, channel=channel, address=address)
            await AuditLog.create(actor=actor, action="customer.created",
                                  customer_id=customer.id,
                                  detail={"channels": sorted({c.value for c, _ in addresses})})
            return customer

    async def add_identity(self, customer_id: int, channel: Channel, raw: str,
                           actor: str) -> Identity:
        """Give a customer another address; one that leads to someone else raises AddressTaken
        (merging is a decision of its own: `merge`)."""
        address = normalize_typed_address(channel, raw, self.default_region)
        async with self.bus.unit_of_work():
            customer = await self.live(customer_id)
            existing = await Identity.filter(channel=channel, address=address).first()
            if existing is not None and existing.customer_id == customer.id:
                return existing
            await self._free(channel, address)
            identity = await Identity.create(customer_id=customer.id, channel=channel,
                                             address=address)
            await AuditLog.create(actor=actor, action="identity.linked",
                                  customer_id=customer.id, detail={"channel": channel.value})
            return identity

    async def remove_identity(self, customer_id: int, identity_id: int, actor: str) -> None:
        async with self.bus.unit_of_work():
            customer = await self.live(customer_id)
            identity = await Identity.filter(id=identity_id, customer_id=customer.id).first()
            if identity is None:
                raise NotFound(f"customer #{customer.id} has no identity #{identity_id}")
            await identity.delete()
            await AuditLog.create(actor=actor, action="identity.removed",
                                  customer_id=customer.id,
                                  detail={"channel": identity.channel.value})

    async def _free(self, channel: Channel, address: str) -> None:
        owner = await Identity.filter(channel=channel, address=address).first()
        if owner is not None:
            survivor = await self.get(owner.customer_id)
            raise AddressTaken(f"{channel.value} address {address} belongs to customer "
                               f"#{survivor.id}; merge the two customers instead", survivor.id)

    async def update(self, customer_id: int, *, actor: str | None = None,
                     **fields: Any) -> Customer:
        """Change a customer's own fields; with an actor, the change is audited (the field
        names, not the values: the audit log outlives an erasure)."""
        async with self.bus.unit_of_work():
            customer = await self.live(customer_id)
            for key, value in fields.items():
                setattr(customer, key, value)
            await customer.save(update_fields=list(fields))
            if actor is not None:
                await AuditLog.create(actor=actor, action="customer.updated",
                                      customer_id=customer.id, detail={"fields": sorted(fields)})
            return customer

    async def retag(self, customer_id: int, *, add: Sequence[str] = (),
                    remove: Sequence[str] = (), actor: str | None = None) -> Customer:
        """Add and remove tags (lower-cased, without '#'); what else the customer has stays."""
        def clean(tags: Sequence[str]) -> set[str]:
            return {t.strip().lstrip("#").lower()[:64] for t in tags if t.strip().lstrip("#")}

        async with self.bus.unit_of_work():
            customer = await self.live(customer_id)
            tags = sorted((set(customer.tags) | clean(add)) - clean(remove))
            if tags == sorted(customer.tags):
                return customer
            return await self.update(customer.id, tags=tags, actor=actor)

    async def timeline(self, customer_id: int, limit: int | None = None) -> list[Message]:
        customer = await self.get(customer_id)
        qs = Message.filter(customer_id=customer.id).order_by("-created_at", "-id")
        if limit:
            qs = qs.limit(limit)
        return list(reversed(await qs))

    async def export(self, customer_id: int, actor: str = "cli") -> dict[str, Any]:
        """Everything held on a customer, as JSON-ready data (for a data-access request)."""
        customer = await self.get(customer_id)
        data: dict[str, Any] = {
            "customer": _row(customer),
            "merged_from": [_row(c) for c in await _merged_into(customer.id)],
            "identities": [_row(i) for i in await Identity.filter(customer_id=customer.id)],
            "conversations": [_row(c) for c in await Conversation.filter(
                customer_id=customer.id).order_by("id")],
            "messages": [_row(m) for m in await Message.filter(
                customer_id=customer.id).order_by("created_at", "id")],
            "audit": [_row(a) for a in await AuditLog.filter(
                customer_id=customer.id).order_by("id")],
        }
        for handler in self.related:
            data.update(await handler.export(customer.id))
        await AuditLog.create(actor=actor, action="customer.exported", customer_id=customer.id)
        return data

    async def forget(self, customer_id: int, actor: str = "cli") -> dict[str, int]:
        """Erase personal data; keep anonymous rows so counts and reports still add up."""
        async with self.bus.unit_of_work():
            customer = await self.get(customer_id)
            counts = {
                "messages": await Message.filter(customer_id=customer.id).update(
                    text=ERASED, attachments=[], meta={}, reply_to=None),
                "identities": await Identity.filter(customer_id=customer.id).delete(),
                # Unsent messages are cancelled; sent ones keep their state for the counts.
                "outbox_cancelled": await Outbox.filter(
                    customer_id=customer.id,
                    state__in=[OutboxState.QUEUED, OutboxState.SENDING]).update(
                    state=OutboxState.CANCELLED),
            }
            await Outbox.filter(customer_id=customer.id).update(payload={}, address=ERASED)
            await Conversation.filter(customer_id=customer.id).update(subject=None)
            await CustomerTopic.filter(customer_id=customer.id).delete()
            for handler in self.related:
                counts.update(await handler.forget(customer.id))
            for person in [customer, *await _merged_into(customer.id)]:
                person.name = None
                person.tags, person.attributes = [], {}
                person.lead_source = None
                person.timezone = None
                person.erased_at = self.clock()
                await person.save()
            await AuditLog.create(actor=actor, action="customer.forgotten",
                                  customer_id=customer.id, detail={"counts": counts})
            return counts


async def _merged_into(customer_id: int) -> list[Customer]:
    """Every customer merged (directly or through others) into this one."""
    found: list[Customer] = []
    frontier = [customer_id]
    while frontier:
        batch = await Customer.filter(merged_into_id__in=frontier)
        found += batch
        frontier = [c.id for c in batch]
    return found


def _row(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in obj._meta.db_fields:
        value = getattr(obj, obj._meta.fields_db_projection_reverse.get(name, name), None)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Enum):
            value = value.value
        out[name] = value
    return out
