"""Customers as a whole: find, link identities, merge two into one, export, forget, opt out."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import structlog
from tortoise.expressions import Q

from crm.clock import Clock, utcnow
from crm.errors import CrmError, NotFound
from crm.events import CustomersMerged, EventBus
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


class Customers:
    def __init__(self, bus: EventBus, default_region: str = "US",
                 clock: Clock = utcnow) -> None:
        self.bus = bus
        self.default_region = default_region
        self.clock = clock

    async def get(self, customer_id: int) -> Customer:
        customer = await Customer.get_or_none(id=customer_id)
        if customer is None:
            raise NotFound(f"customer #{customer_id} does not exist")
        while customer.merged_into_id is not None:
            customer = await Customer.get(id=customer.merged_into_id)
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
            customer = await self.get(customer_id)
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
            moved.update(await _move_related(source.id, target.id))
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
            moved["conversations_closed"] = len(live[1:])
            target.tags = sorted(set(target.tags) | set(source.tags))
            target.attributes = {**source.attributes, **target.attributes}
            target.name = target.name or source.name
            target.language = target.language or source.language
            target.lead_source = target.lead_source or source.lead_source
            if source.marketing_opt_out and not target.marketing_opt_out:
                target.marketing_opt_out, target.opted_out_at = True, source.opted_out_at
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

    async def set_opt_out(self, customer_id: int, opted_out: bool,
                          actor: str = "customer") -> bool:
        """Returns whether anything changed."""
        async with self.bus.unit_of_work():
            customer = await self.get(customer_id)
            if customer.marketing_opt_out == opted_out:
                return False
            customer.marketing_opt_out = opted_out
            customer.opted_out_at = self.clock() if opted_out else None
            await customer.save(update_fields=["marketing_opt_out", "opted_out_at"])
            await AuditLog.create(actor=actor, action="opt_out" if opted_out else "opt_in",
                                  customer_id=customer.id, detail={})
            return True

    async def update(self, customer_id: int, **fields: Any) -> Customer:
        customer = await self.get(customer_id)
        for key, value in fields.items():
            setattr(customer, key, value)
        await customer.save(update_fields=list(fields))
        return customer

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
        data.update(await _export_related(customer.id))
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
            counts.update(await _forget_related(customer.id))
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


# Modules that add tables with customer data (orders, campaigns, tasks) register here, so that
# merge, export and forget cover them without this module knowing them.
_related: list[Any] = []


async def _merged_into(customer_id: int) -> list[Customer]:
    """Every customer merged (directly or through others) into this one."""
    found: list[Customer] = []
    frontier = [customer_id]
    while frontier:
        batch = await Customer.filter(merged_into_id__in=frontier)
        found += batch
        frontier = [c.id for c in batch]
    return found


def register_related(handler: Any) -> None:
    """`handler` has async `move(source_id, target_id)`, `export(id)` and `forget(id)`."""
    _related.append(handler)


async def _move_related(source_id: int, target_id: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for handler in _related:
        out.update(await handler.move(source_id, target_id))
    return out


async def _export_related(customer_id: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for handler in _related:
        out.update(await handler.export(customer_id))
    return out


async def _forget_related(customer_id: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for handler in _related:
        out.update(await handler.forget(customer_id))
    return out


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
