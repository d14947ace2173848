"""Every table with a customer's data follows the customer: merge, export and forget."""

from __future__ import annotations

import json
from datetime import timedelta

from tortoise import Tortoise
from tortoise.fields.relational import ForeignKeyFieldInstance

from crm.config import Settings
from crm.models import AuditLog, Consent, Customer, Order, OrderEvent, Task
from crm.services import Core
from crm.types import Channel, ConsentKind, ConsentSource, InboundMessage, TaskKind, TaskState
from tests.support.clock import TravelClock


def _parents(model: type) -> set[type]:
    """The models `model` points at with a foreign key."""
    meta = model._meta  # type: ignore[attr-defined]
    return {f.related_model for f in meta.fields_map.values()
            if isinstance(f, ForeignKeyFieldInstance)}


def _customer_column(model: type) -> bool:
    """A plain customer_id column (the audit log's), no foreign key."""
    return "customer_id" in model._meta.fields_db_projection.values()  # type: ignore[attr-defined]


def _paths_to_customer(model: type, seen: frozenset[type] = frozenset()) -> list[list[type]]:
    """Every chain of foreign keys from `model` to Customer (OrderEvent → Order → Customer)."""
    if model is Customer:
        return [[Customer]]
    paths = [[model, *rest] for parent in _parents(model) - seen - {model}
             for rest in _paths_to_customer(parent, seen | {model})]
    if not paths and _customer_column(model):
        paths = [[model, Customer]]
    return paths


def test_every_table_that_reaches_a_customer_is_covered(core: Core) -> None:
    models = [m for app in Tortoise.apps.values() for m in app.values() if m is not Customer]
    reaching = {m: paths for m in models if (paths := _paths_to_customer(m))}
    # The walk finds what it should: directly, by a plain column, and through a parent.
    assert {Task, Consent, Order, AuditLog, OrderEvent} <= set(reaching)
    assert [OrderEvent, Order, Customer] in reaching[OrderEvent]
    covered = core.customers.covered
    missing = sorted(m.__name__ for m in set(reaching) - covered)
    assert not missing, (
        f"{missing} hold a customer's data (they reach Customer by foreign keys) but merge, "
        "export and forget do not cover them: give each a CustomerData handler in Core.build "
        "(crm/services.py), or list it in the `parts` of the handler of the table it reaches "
        "the customer through")
    # A part is covered through its parent: the handler's own table is on its way to Customer.
    for handler in core.customers.related:
        for part in getattr(handler, "parts", ()):
            assert any(handler.model in path for path in reaching[part]), (
                f"{part.__name__} is a part of {type(handler).__name__}, but does not reach "
                f"the customer through {handler.model.__name__}")


async def _customer(core: Core, sender: str, channel: Channel = Channel.TELEGRAM) -> int:
    result = await core.timeline.ingest(InboundMessage(channel, f"m-{sender}", sender, text="hi"))
    return result.customer_id


async def test_tasks_and_consent_follow_a_merge_export_and_forget(core: Core) -> None:
    old, new = await _customer(core, "501"), await _customer(core, "+12025550188", Channel.SMS)
    await Task.create(kind=TaskKind.REMINDER, due_at=core.clock() + timedelta(days=1),
                      key="t-1", customer_id=new, text="call her about the refund")
    await core.consent.change(new, ConsentKind.MARKETING, False, channel=Channel.SMS,
                              source=ConsentSource.KEYWORD, actor="customer")
    survivor = await core.customers.merge(new, old)
    assert survivor.id == old
    assert await Task.filter(customer_id=old).count() == 1
    assert not await core.consent.allows(old, ConsentKind.MARKETING, Channel.SMS)
    assert await core.consent.allows(old, ConsentKind.MARKETING, Channel.TELEGRAM)

    data = await core.customers.export(old)
    assert [t["text"] for t in data["tasks"]] == ["call her about the refund"]
    assert [(c["channel"], c["granted"]) for c in data["consent"]] == [("sms", False)]

    await core.customers.forget(old)
    task = await Task.get(key="t-1")
    assert task.state is TaskState.CANCELLED and task.text == ""
    assert "refund" not in json.dumps(await core.customers.export(old), default=str)
    # The opt-out outlives the erasure: an erased customer is still not marketed to.
    assert not await core.consent.allows(old, ConsentKind.MARKETING, Channel.SMS)


async def test_merge_keeps_the_newer_word_on_each_channel(settings: Settings) -> None:
    clock = TravelClock()
    core = Core.build(settings, clock)
    a, b = await _customer(core, "601"), await _customer(core, "602")
    await core.consent.change(a, ConsentKind.MARKETING, False, channel=Channel.EMAIL,
                              source=ConsentSource.KEYWORD, actor="customer")
    clock.advance(minutes=5)
    await core.consent.change(b, ConsentKind.MARKETING, False, channel=Channel.EMAIL,
                              source=ConsentSource.LINK, actor="customer")
    clock.advance(minutes=5)
    await core.consent.change(b, ConsentKind.MARKETING, True, channel=Channel.EMAIL,
                              source=ConsentSource.LINK, actor="customer")
    await core.customers.merge(a, b)
    # b opted back in after a opted out: the survivor takes email marketing.
    assert await core.consent.allows(b, ConsentKind.MARKETING, Channel.EMAIL)
    assert await Consent.filter(customer_id=b).count() == 1
    assert await Consent.filter(customer_id=a).count() == 0


async def test_orders_follow_a_merge_export_and_forget(core: Core) -> None:
    from crm.models import Order, OrderEvent
    from crm.orders.service import CustomerRef, OrderInput

    old, new = await _customer(core, "701"), await _customer(core, "+12025550199", Channel.SMS)
    for number, who in (("A-1", old), ("B-2", new)):
        await core.orders.put(number, OrderInput(
            customer=CustomerRef(customer_id=who), items=[{"name": "Ring, engraved 'Ann'"}],
            amount="10.00", currency="EUR", note="gift"), source="api", actor="api:shop")
    await core.customers.merge(new, old)
    assert sorted(o.number for o in await core.queries.orders.recent(old, 10)) == ["A-1", "B-2"]
    data = await core.customers.export(old)
    assert sorted(o["number"] for o in data["orders"]) == ["A-1", "B-2"]
    assert data["orders"][0]["history"][0]["note"] == "gift"
    await core.customers.forget(old)
    orders = await Order.filter(customer_id=old)
    assert [(o.items, o.amount_minor) for o in orders] == [([], 1000), ([], 1000)]
    assert set(await OrderEvent.all().values_list("note", flat=True)) == {""}
    assert "engraved" not in json.dumps(await core.customers.export(old), default=str)
