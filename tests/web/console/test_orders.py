"""Orders in the console over HTTP: the list and its search, one order with its history, the
status moved by a manager (the customer told once, on their channel), roles, CSRF, escaping."""

from __future__ import annotations

import pytest

from crm.models import AuditLog, Order, OrderEvent, Outbox
from crm.orders.service import CustomerRef, OrderInput
from crm.types import Channel, Role
from tests.web.console.conftest import Console

XSS = "<img src=x onerror=alert(1)>"


async def _order(console: Console, number: str, customer_id: int, status: str = "new",
                 items: list[dict[str, object]] | None = None, amount: str | None = None) -> None:
    await console.core.orders.put(number, OrderInput(
        customer=CustomerRef(customer_id=customer_id), status=status, items=items,
        amount=amount, currency="EUR" if amount else None), source="api", actor="api:shop")


async def test_the_list_searches_by_number_customer_and_address(console: Console) -> None:
    ann = await console.staff("Ann")
    olga = await console.customer("+12025550301", "hi", name="Ольга")
    boris = await console.customer("boris@example.com", "hi", channel=Channel.EMAIL,
                                   name="Boris")
    await _order(console, "A-1001", olga, amount="49.90")
    await _order(console, "B-2002", boris, status="paid")
    await _order(console, "B-2003", boris, status="shipped")
    browser = await console.signed_in(ann)
    page = await browser.get("/console/orders")
    assert page.status == 200
    # Newest first, with the customer and the amount.
    assert page.text.index("B-2003") < page.text.index("B-2002") < page.text.index("A-1001")
    assert "49.90 EUR" in page.text and "Ольга" in page.text
    for query, found, not_found in (("a-100", "A-1001", "B-2002"),  # case ignored
                                    ("ОЛЬГА", "A-1001", "B-2002"),  # any script
                                    ("boris@", "B-2002", "A-1001"),
                                    ("5550301", "A-1001", "B-2003")):
        hits = await browser.get(f"/console/orders?q={query}")
        assert found in hits.text and not_found not in hits.text, query
    paid = await browser.get("/console/orders?status=paid")
    assert "B-2002" in paid.text and "B-2003" not in paid.text and "A-1001" not in paid.text
    none = await browser.get("/console/orders?q=50%25_")  # LIKE's own signs are text
    assert "A-1001" not in none.text and "Nothing here." in none.text


async def test_pages_of_the_list_follow_each_other(console_with) -> None:  # type: ignore[no-untyped-def]
    console = await console_with(console={"page_size": 5})
    ann = await console.staff("Ann")
    cid = await console.customer("+12025550311", "hi")
    for n in range(7):
        await _order(console, f"P-{n}", cid)
    browser = await console.signed_in(ann)
    first = await browser.get("/console/orders")
    assert "P-6" in first.text and "P-2" in first.text and "P-1" not in first.text
    link = first.text.split('class="more" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = await browser.get(link)
    assert "P-1" in second.text and "P-0" in second.text and "P-2" not in second.text
    assert 'class="more"' not in second.text


async def test_one_order_with_its_items_and_history(console: Console) -> None:
    ann = await console.staff("Ann")
    cid = await console.customer("+12025550321", "hi", name="Vera")
    await _order(console, "C-1", cid, items=[{"name": XSS, "quantity": 2, "price": "5.00",
                                             "sku": "<b>sku</b>"}], amount="10.00")
    await console.core.orders.set_status("C-1", "paid", note=f"paid {XSS}", source="api",
                                         actor="api:shop")
    browser = await console.signed_in(ann)
    page = await browser.get("/console/orders/c-1")  # the number's case does not matter
    assert page.status == 200
    assert "Order C-1" in page.text and "Vera" in page.text and "10.00 EUR" in page.text
    assert 'data-status="paid"' in page.text and "New → Paid" in page.text
    assert "API key shop" in page.text  # who did it, as people read it
    # Shop text (item names, SKUs, notes) is text, never markup.
    assert XSS not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<b>sku</b>" not in page.text and "&lt;b&gt;sku&lt;/b&gt;" in page.text
    assert (await browser.get("/console/orders/NOPE-404")).status == 404
    assert (await browser.get("/console/orders/not%20a%20number")).status == 404


async def test_a_manager_moves_the_status_and_the_customer_is_told_once(
        console: Console) -> None:
    ann = await console.staff("Ann")
    cid = await console.customer("+12025550331", "where is my order?", name="Gleb")
    await _order(console, "D-1", cid)
    browser = await console.signed_in(ann)
    form = {"status": "shipped", "note": "DHL 123"}
    for _ in range(2):  # a double submit moves it once
        done = await browser.post("/console/orders/D-1/status", form)
        assert done.status == 303 and done.headers["Location"] == "/console/orders/D-1"
    [sent] = await console.sms.wait_sent(1)
    assert sent.address == "+12025550331" and "D-1" in sent.text
    assert await Outbox.filter(customer_id=cid, idempotency_key__startswith="order:").count() \
        == 1
    events = await OrderEvent.filter(order__number="D-1").order_by("id")
    assert [(e.status, e.source, e.actor, e.note) for e in events] == [
        ("new", "api", "api:shop", ""), ("shipped", "console", f"manager:{ann.id}", "DHL 123")]
    page = await browser.get("/console/orders/D-1")
    assert "New → Shipped" in page.text and "Ann" in page.text and "DHL 123" in page.text
    # The customer's timeline has the event, as for a change through the API.
    timeline = await browser.get(f"/console/customers/{cid}")
    assert "Order D-1: New → Shipped" in timeline.text


async def test_refusals_are_shown_on_the_order_page(console: Console) -> None:
    ann = await console.staff("Ann")
    cid = await console.customer("+12025550341", "hi")
    await _order(console, "E-1", cid, status="delivered")
    await _order(console, "E-2", cid)
    browser = await console.signed_in(ann)
    final = await browser.post("/console/orders/E-1/status", {"status": "new"})
    assert final.status == 409 and "a final status" in final.text
    unknown = await browser.post("/console/orders/E-2/status", {"status": "lost"})
    assert unknown.status == 422 and "unknown status &#39;lost&#39;" in unknown.text
    long = await browser.post("/console/orders/E-2/status", {"status": "paid",
                                                             "note": "x" * 2001})
    assert long.status == 422 and "too long" in long.text
    assert (await Order.get(number="E-2")).status == "new"
    page = await browser.get("/console/orders/E-1")
    assert 'id="order-final"' in page.text and 'id="status-form"' not in page.text


async def test_a_post_without_the_token_changes_nothing(console: Console) -> None:
    ann = await console.staff("Ann")
    cid = await console.customer("+12025550351", "hi")
    await _order(console, "F-1", cid)
    browser = await console.signed_in(ann)
    for csrf in (None, "guess"):
        refused = await browser.post("/console/orders/F-1/status", {"status": "paid"},
                                     csrf=csrf)
        assert refused.status == 403
    other = await browser.post("/console/orders/F-1/status", {"status": "paid"},
                               headers={"Origin": "https://evil.example"})
    assert other.status == 403
    assert (await Order.get(number="F-1")).status == "new"
    assert not await AuditLog.filter(action="order.updated").exists()


@pytest.mark.parametrize(("role", "read", "move"), [
    (Role.MANAGER, True, True), (Role.ADMIN, True, True), (Role.LEAD, True, True),
    (Role.MARKETER, False, False),
])
async def test_roles(console: Console, role: Role, read: bool, move: bool) -> None:
    who = await console.staff("Who", role)
    cid = await console.customer("+12025550361", "hi")
    await _order(console, "G-1", cid)
    browser = await console.signed_in(who)
    assert (await browser.get("/console/orders")).status == (200 if read else 403)
    page = await browser.get("/console/orders/G-1")
    assert page.status == (200 if read else 403)
    if read:
        assert ('id="status-form"' in page.text) is move
    done = await browser.post("/console/orders/G-1/status", {"status": "paid"})
    assert done.status == (303 if move else 403)
    assert (await Order.get(number="G-1")).status == ("paid" if move else "new")
    nav = await browser.get("/console/customers")
    assert ('href="/console/orders"' in nav.text) is read


async def test_the_pages_in_russian(console: Console) -> None:
    ann = await console.staff("Ann")
    cid = await console.customer("+12025550371", "hi")
    await _order(console, "H-1", cid, status="paid")
    browser = await console.signed_in(ann)
    ru = {"Accept-Language": "ru"}
    assert "Все статусы" in (await browser.get("/console/orders", headers=ru)).text
    page = await browser.get("/console/orders/H-1", headers=ru)
    assert "Заказ H-1" in page.text and "Оплачен" in page.text and "Сменить статус" in page.text
