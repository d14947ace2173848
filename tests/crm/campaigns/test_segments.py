"""Segments on the database: every kind of filter finds the customers it should, a preview
counts them and shows ten, and a saved segment is refused or replaced by name. RFM segments on
the reports' hand-worked dataset (tests/support/reports_data.py): the filter selects exactly
the customers the customers report puts in each segment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from crm.errors import Conflict, InvalidField
from crm.models import Customer, Identity, Order
from crm.reports.reports import ReportName
from crm.reports.rfm import Segment
from crm.services import Core
from crm.types import Channel, ConsentKind, ConsentSource
from tests.conftest import make_settings
from tests.support.reports_data import NOW, seed


async def _person(name: str, *, tags: list[str] | None = None, language: str | None = None,
                  lead: str | None = None, attributes: dict[str, Any] | None = None,
                  seen: datetime | None = None, created: datetime | None = None,
                  addresses: dict[Channel, str] | None = None,
                  blocked: tuple[Channel, ...] = ()) -> int:
    customer = await Customer.create(name=name, tags=tags or [], language=language,
                                     lead_source=lead, attributes=attributes or {},
                                     last_seen_at=seen)
    if created is not None:
        await Customer.filter(id=customer.id).update(created_at=created)
    for channel, address in (addresses or {}).items():
        await Identity.create(customer_id=customer.id, channel=channel, address=address,
                              undeliverable_reason="blocked" if channel in blocked else None)
    return customer.id


async def _order(customer_id: int, number: str, status: str, amount: int,
                 currency: str = "EUR", placed: datetime | None = None) -> None:
    await Order.create(number=number, number_key=number, customer_id=customer_id,
                       status=status, amount_minor=amount, currency=currency,
                       placed_at=placed, status_changed_at=datetime(2026, 1, 1, tzinfo=UTC))


async def _names(core: Core, filters: dict[str, Any]) -> list[str]:
    ids = await core.segments.matching_ids(filters)
    return [c.name or "" for c in await Customer.filter(id__in=ids).order_by("id")]


async def test_each_filter_finds_its_customers(core: Core) -> None:
    jan, mar = datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)
    ann = await _person("Ann", tags=["vip"], language="ru", lead="instagram",
                        attributes={"plan": "gold", "age": 34}, seen=mar, created=jan,
                        addresses={Channel.TELEGRAM: "101", Channel.EMAIL: "ann@x.org"})
    bob = await _person("Bob", tags=["new"], language="en", attributes={"plan": "free",
                                                                        "age": "unknown"},
                        seen=jan, created=mar, addresses={Channel.SMS: "+12025550101"},
                        blocked=(Channel.SMS,))
    cat = await _person("Cat", language="RU", attributes={"age": 19.5}, created=jan,
                        addresses={Channel.EMAIL: "cat@x.org"})
    erased = await _person("Gone", tags=["vip"])
    await Customer.filter(id=erased).update(erased_at=mar)
    merged = await _person("Merged", tags=["vip"])
    await Customer.filter(id=merged).update(merged_into_id=ann)
    await core.consent.change(cat, ConsentKind.MARKETING, False, channel=Channel.EMAIL,
                              source=ConsentSource.LINK, actor="customer")
    await core.consent.change(ann, ConsentKind.MARKETING, False, channel=None,
                              source=ConsentSource.KEYWORD, actor="customer")
    await core.consent.change(ann, ConsentKind.MARKETING, True, channel=Channel.TELEGRAM,
                              source=ConsentSource.COMMAND, actor="customer")
    await _order(ann, "A-1", "delivered", 5000, placed=jan)
    await _order(ann, "A-2", "shipped", 7000, placed=mar)
    await _order(ann, "A-3", "cancelled", 100_000, placed=datetime(2026, 2, 1, tzinfo=UTC))
    await _order(bob, "B-1", "delivered", 2000, currency="USD")

    assert await _names(core, {}) == ["Ann", "Bob", "Cat"]  # never erased or merged ones
    assert await _names(core, {"tag": "VIP"}) == ["Ann"]
    assert await _names(core, {"no_tag": ["vip", "new"]}) == ["Cat"]
    assert await _names(core, {"language": "ru"}) == ["Ann", "Cat"]
    assert await _names(core, {"lead_source": "instagram"}) == ["Ann"]
    assert await _names(core, {"reachable": "sms"}) == []  # Bob's number is marked
    assert await _names(core, {"reachable": ["email", "sms"]}) == ["Ann", "Cat"]
    # Ann said STOPALL, then /start in Telegram: the newer word holds on each channel.
    assert await _names(core, {"consent": "telegram"}) == ["Ann", "Bob", "Cat"]
    assert await _names(core, {"consent": "email"}) == ["Bob"]
    assert await _names(core, {"last_inbound_after": "2026-02-01"}) == ["Ann"]
    assert await _names(core, {"last_inbound_before": "2026-02-01"}) == ["Bob"]
    assert await _names(core, {"first_seen_after": datetime(2026, 2, 1, tzinfo=UTC)}) == [
        "Bob"]
    assert await _names(core, {"attribute": "plan", "equals": "gold"}) == ["Ann"]
    assert await _names(core, {"attribute": "plan", "in": ["gold", "free"]}) == ["Ann", "Bob"]
    assert await _names(core, {"attribute": "plan", "exists": False}) == ["Cat"]
    # "unknown" is no number: neither above nor below anything.
    assert await _names(core, {"attribute": "age", "gte": 19.5}) == ["Ann", "Cat"]
    assert await _names(core, {"attribute": "age", "lt": 30}) == ["Cat"]
    assert await _names(core, {"orders_min": 2}) == ["Ann"]
    assert await _names(core, {"orders_max": 0}) == ["Cat"]
    # The cancelled order does not count; without a currency every order is summed.
    assert await _names(core, {"spent_min": 100}) == ["Ann"]
    assert await _names(core, {"spent_min": 10, "currency": "USD"}) == ["Bob"]
    assert await _names(core, {"last_order_status": "shipped"}) == ["Ann"]
    assert await _names(core, {"last_order_status": ["delivered"]}) == ["Bob"]
    # Cat has no orders: "not last status cancelled" holds for her (no unknown left over).
    assert await _names(core, {"not": {"last_order_status": "shipped"}}) == ["Bob", "Cat"]
    assert await _names(core, {"any": [{"tag": "new"}, {"language": "ru", "not": {
        "tag": "vip"}}]}) == ["Bob", "Cat"]
    assert await _names(core, {"all": [{"reachable": "email"}, {"consent": "email"}]}) == []


async def test_preview_counts_and_shows_ten(core: Core) -> None:
    for n in range(14):
        await _person(f"P{n:02d}", tags=["club"],
                      addresses={Channel.SMS: f"+1202555{n:04d}"} if n % 2 else {})
    preview = await core.segments.preview({"tag": "club"})
    assert preview.count == 14
    assert [row.name for row in preview.sample] == [f"P{n:02d}" for n in range(10)]
    assert [row.channels for row in preview.sample[:2]] == [(), ("sms",)]


async def test_saved_by_name_refused_twice_unless_replaced(core: Core) -> None:
    first = await core.segments.create("club members", {"tag": "club"}, actor="cli")
    with pytest.raises(Conflict, match="--replace"):
        await core.segments.create("club members", {"tag": "other"})
    again = await core.segments.create("club members", {"tag": "other"}, replace=True)
    assert again.id == first.id and (await core.segments.get("club members")).filters == {
        "tag": "other"}
    assert (await core.segments.get(first.id)).name == "club members"
    with pytest.raises(InvalidField) as bad:
        await core.segments.create("broken", {"tag": ["ok", 3]})
    assert bad.value.field == "filter.tag"
    assert [s.name for s in await core.segments.all()] == ["club members"]


async def test_rfm_segments_are_the_customers_reports(db: str) -> None:
    core = Core.build(make_settings(db), clock=lambda: NOW)
    seeded = await seed()
    lurker = await _person("Lurker", tags=["vip"])  # never ordered: in no RFM segment
    ids = {name: c.id for name, c in seeded.customers.items()}
    report = core.reports
    behind = await report.rows(ReportName.CUSTOMERS, report.default_period(ReportName.CUSTOMERS))
    for segment in Segment:
        expected = sorted(r["customer_id"] for r in behind.rows if r["segment"] == segment.value)
        assert await core.segments.matching_ids({"rfm": segment.value}) == expected, segment
    # By hand (tests/crm/reports/test_reports.py): Ann R5 F4 champions, Boris promising, Vera
    # about to sleep, Dina at risk, Gleb and Egor hibernating.
    assert await _names(core, {"rfm": ["champions", "at risk"]}) == ["Ann", "Dina"]
    assert await _names(core, {"rfm": "Hibernating"}) == ["Gleb", "Egor"]
    assert await _names(core, {"rfm": ["champions", "at risk"], "tag": "vip"}) == ["Ann"]
    assert await _names(core, {"any": [{"rfm": "promising"}, {"tag": "wholesale"}]}) == [
        "Boris", "Vera"]
    assert await _names(core, {"not": {"rfm": ["hibernating", "champions"]}}) == [
        "Boris", "Vera", "Dina", "Lurker"]
    # Over the last 30 days (1–31 March) each buyer has one order, so F is 1 for all and R
    # ranks the last order: Dina 1, Gleb 2, Vera 3, Boris 4, Ann 5 (Egor's was cancelled).
    assert await _names(core, {"rfm": "new customers", "rfm_days": 30}) == ["Ann"]
    assert await _names(core, {"rfm": "hibernating", "rfm_days": 30}) == ["Gleb", "Dina"]
    preview = await core.segments.preview({"rfm": "hibernating"})
    assert preview.count == 2 and [r.id for r in preview.sample] == [ids["Gleb"], ids["Egor"]]
    saved = await core.segments.create("sleepers", {"rfm": ["at_risk", "hibernating"]})
    assert (await core.segments.preview(saved.filters)).count == 3
    assert lurker not in await core.segments.matching_ids({"rfm": list(Segment)})
