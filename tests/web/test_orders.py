"""Orders through the API over real HTTP: create or update with the customer, post a status,
read; scopes, validation, idempotency; the customer told once, on the right channel; the
webhook; and the status page the link opens (escaped, no personal data, 403 and 410)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

from crm.apikeys import Scope
from crm.i18n import t
from crm.models import AuditLog, Customer, Identity, Message, Order, OrderEvent, Outbox
from crm.types import Channel, ConsentKind, ConsentSource, Direction, InboundMessage
from tests.conftest import make_settings
from tests.support.clock import TravelClock
from tests.web.conftest import Api, running
from tests.web.test_auth import is_problem
from tests.web.test_webhooks import SECRET, Receiver, receiver, receiver_verifies

__all__ = ["receiver"]  # the fixture

NEW = {"customer": {"email": " Ann@Example.com ", "phone": "(202) 555-0143", "name": "Ann"},
       "status": "new", "amount": "49.90", "currency": "eur", "external_number": "SHOP-77",
       "items": [{"name": "Mug", "quantity": 2, "price": "12.50"}],
       "placed_at": "2026-03-01T10:00:00+00:00"}


async def test_put_creates_then_updates_and_reads_back(api: Api) -> None:
    created = await api.call("PUT", "/api/v1/orders/A-1001", json=NEW)
    assert created.status == 201, created.text
    assert created.headers["Location"] == "/api/v1/orders/A-1001"
    body = created.body
    assert (body["number"], body["status"], body["amount"], body["currency"]) == (
        "A-1001", "new", "49.90", "EUR")
    assert body["items"] == [{"name": "Mug", "quantity": 2, "price": "12.50"}]
    assert [e["status"] for e in body["events"]] == ["new"]
    assert body["status_url"].startswith("http://127.0.0.1:8080/o/")
    # The customer was created with both addresses, normalised.
    customer = await Customer.get(id=body["customer_id"])
    assert customer.name == "Ann"
    assert sorted(await Identity.filter(customer_id=customer.id).values_list(
        "channel", "address")) == [("email", "ann@example.com"), ("sms", "+12025550143")]

    # Again with the same body: the same order, nothing new.
    again = await api.call("PUT", "/api/v1/orders/a-1001", json=NEW)
    assert again.status == 200 and again.body["id"] == body["id"]
    assert await OrderEvent.filter(order_id=body["id"]).count() == 1
    # A partial update: only what is given changes; a phone alone finds the same customer.
    update = await api.call("PUT", "/api/v1/orders/A-1001", json={
        "customer": {"phone": "+1 202 555 0143"}, "amount": 55, "status": "paid",
        "note": "paid by card"})
    assert update.status == 200, update.text
    assert (update.body["amount"], update.body["status"], update.body["external_number"]) == (
        "55.00", "paid", "SHOP-77")
    assert update.body["customer_id"] == customer.id
    assert [(e["status"], e["previous_status"], e["note"]) for e in update.body["events"]] == [
        ("new", None, ""), ("paid", "new", "paid by card")]

    got = await api.get("/api/v1/orders/A-1001")
    assert got.status == 200 and got.body["status"] == "paid" and got.body["label"] == "Paid"
    listing = await api.get(f"/api/v1/customers/{customer.id}/orders")
    assert [o["number"] for o in listing.body["items"]] == ["A-1001"]
    assert listing.body["next_cursor"] is None
    assert await AuditLog.filter(action="order.created", actor="api:default").count() == 1


async def test_scopes_and_keys(api: Api) -> None:
    is_problem(await api.get("/api/v1/orders/A-1", key=None), 401, "unauthorized")
    reader = await api.key_with(Scope.ORDERS_READ)
    is_problem(await api.call("PUT", "/api/v1/orders/A-1", json=NEW, key=reader), 403,
               "missing-scope")
    assert not await Order.exists()
    is_problem(await api.get("/api/v1/orders/A-1", key=reader), 404, "not-found")
    customers_only = await api.key_with(Scope.CUSTOMERS_READ)
    is_problem(await api.get("/api/v1/orders/A-1", key=customers_only), 403, "missing-scope")


async def test_bad_requests_are_refused_clearly_and_store_nothing(api: Api) -> None:
    async def put(number: str, body: dict[str, Any]) -> Any:
        return await api.call("PUT", f"/api/v1/orders/{number}", json=body)

    answer = await put("A-1", {**NEW, "status": "lost"})
    is_problem(answer, 422, "unknown-status")
    assert "'lost'" in answer.body["detail"] and "shipped" in answer.body["detail"]
    answer = await put("no-digits", NEW)
    is_problem(answer, 422, "validation-error")
    assert answer.body["errors"][0]["field"] == "number"
    answer = await put("A-1", {**NEW, "amount": "1.234"})
    is_problem(answer, 422, "validation-error")
    assert answer.body["errors"] == [{"in": "body", "field": "amount", "code": "invalid",
                                      "message": "'1.234' has more decimals than EUR has (2)"}]
    is_problem(await put("A-1", {**NEW, "colour": "red"}), 422, "validation-error")
    is_problem(await put("A-1", {"status": "new"}), 422, "validation-error")  # no customer
    is_problem(await put("A-1", {**NEW, "customer": {"email": "not-mail"}}), 422, "rejected")
    is_problem(await put("A-1", {**NEW, "customer_id": 5}), 422, "validation-error")
    assert not await Order.exists() and not await Customer.exists()
    is_problem(await api.post("/api/v1/orders/A-404/status", {"status": "paid"}), 404,
               "not-found")

    # Two addresses of two different customers: merge first.
    await api.customer("+12025550100", name="Bob")
    await api.customer("+12025550101", name="Cat")
    await api.core.customers.add_identity(
        (await Identity.get(address="+12025550101")).customer_id, Channel.EMAIL,
        "cat@example.com", actor="test")
    answer = await put("A-2", {"customer": {"phone": "+12025550100", "email": "cat@example.com"}})
    is_problem(answer, 409, "conflict")
    assert "merge them first" in answer.body["detail"]

    # A final status stays.
    assert (await put("A-3", {**NEW, "status": "delivered"})).status == 201
    answer = await api.post("/api/v1/orders/A-3/status", {"status": "shipped"})
    is_problem(answer, 409, "conflict")
    assert "delivered, a final status" in answer.body["detail"]
    # Posting the status it has is no change, not an error.
    assert (await api.post("/api/v1/orders/A-3/status", {"status": "delivered"})).status == 200


async def test_the_same_status_twice_is_one_event_and_one_message(api: Api) -> None:
    cid = await api.customer("+12025550143", text="hi")  # writes by SMS
    created = await api.call("PUT", "/api/v1/orders/B-7", json={"customer_id": cid})
    assert created.status == 201 and created.body["status"] == "new"  # the first status
    first, second = await asyncio.gather(
        api.post("/api/v1/orders/B-7/status", {"status": "shipped", "note": "DHL 123"}),
        api.post("/api/v1/orders/B-7/status", {"status": "shipped", "note": "DHL 123"}))
    assert first.status == second.status == 200
    assert await OrderEvent.filter(status="shipped").count() == 1
    [sent] = await api.sms.wait_sent(1)
    assert sent.address == "+12025550143"
    assert sent.text.startswith("our team: order B-7 is now Shipped. http://127.0.0.1:8080/o/")
    assert "DHL" not in sent.text  # notes are for the team
    assert await Outbox.filter(idempotency_key__startswith="order:").count() == 1
    # In the timeline: the change (what the managers' topic shows) and the message.
    events = await Message.filter(customer_id=cid, direction=Direction.EVENT).values_list(
        "text", flat=True)
    assert events == ["Order B-7 placed: New (api:default).",
                      "Order B-7: New → Shipped (api:default). Note: DHL 123"]
    notice = await Message.get(customer_id=cid, direction=Direction.OUT)
    assert notice.author_kind == "system" and notice.meta["kind"] == "order_status"


async def test_the_customer_is_told_where_they_write_and_allow_it(api: Api) -> None:
    cid = await api.customer("+12025550143", text="by sms")
    await api.core.customers.add_identity(cid, Channel.TEST, "77", actor="test")
    await api.customer("77", text="by the test channel", channel=Channel.TEST)  # newest
    await api.call("PUT", "/api/v1/orders/C-1", json={"customer_id": cid})
    await api.post("/api/v1/orders/C-1/status", {"status": "paid"})
    [paid] = await api.test.wait_sent(1)
    assert paid.address == "77" and "C-1" in paid.text
    # Order updates off where they last wrote: the other channel it is.
    await api.core.consent.change(cid, ConsentKind.NOTIFICATIONS, False, channel=Channel.TEST,
                                  source=ConsentSource.COMMAND, actor="customer")
    await api.post("/api/v1/orders/C-1/status", {"status": "shipped"})
    [shipped] = await api.sms.wait_sent(1)
    assert "Shipped" in shipped.text
    # Off everywhere (SMS STOP stops SMS notifications): nobody is told, and the topic says so.
    await api.core.consent.change(cid, ConsentKind.NOTIFICATIONS, False, channel=Channel.SMS,
                                  source=ConsentSource.KEYWORD, actor="customer")
    await api.post("/api/v1/orders/C-1/status", {"status": "delivered"})
    last = await Message.filter(customer_id=cid, direction=Direction.EVENT).order_by(
        "-id").first()
    assert last is not None and last.text.endswith(
        "The customer was not told: order updates are off on every channel they use.")
    assert await Outbox.filter(idempotency_key__startswith="order:").count() == 2


async def test_order_status_changed_reaches_the_webhook(api_with: Any,
                                                        receiver: Receiver) -> None:
    api: Api = await api_with(webhooks=[{"url": receiver.url, "secret": SECRET,
                                         "events": ["order.status_changed"]}])
    await api.call("PUT", "/api/v1/orders/D-1", json=NEW)
    await api.post("/api/v1/orders/D-1/status", {"status": "paid", "note": "card"})
    got = await receiver.wait(2, accepted=True)
    first, second = (g["event"] for g in got)
    assert first["type"] == second["type"] == "order.status_changed"
    assert (first["data"]["status"], first["data"]["previous_status"]) == ("new", None)
    assert second["data"]["previous_status"] == "new" and second["data"]["note"] == "card"
    assert second["data"]["order"]["number"] == "D-1" and second["data"]["source"] == "api"
    assert all(receiver_verifies(g) for g in got)


async def _page(url: str) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return r.status, await r.text(), r.headers


async def test_the_status_page_shows_the_order_escaped_and_nothing_else(db: str) -> None:
    clock = TravelClock()
    settings = make_settings(db, http={"public_url": "http://shop.test"})
    async with running(settings, clock) as api:
        body = {**NEW, "items": [{"name": "<script>alert(1)</script> & mug", "quantity": 1}]}
        created = await api.call("PUT", "/api/v1/orders/E-1", json=body)
        await api.post("/api/v1/orders/E-1/status", {"status": "shipped", "note": "secret"})
        url = created.body["status_url"].replace("http://shop.test", api.base)
        token = url.rsplit("/", 1)[1]
        status, html, headers = await _page(url)
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        assert '<meta name="viewport"' in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; mug" in html
        assert "<script>" not in html
        assert "Shipped" in html and "E-1" in html and "49.90 EUR" in html
        for heading in ("Status", "History", "Items", "Total"):
            assert f">{heading}<" in html, heading
        assert "built-in method" not in html
        for private in ("ann@example.com", "2025550143", "Ann", "secret", "SHOP-77"):
            assert private not in html, private
        assert headers["Cache-Control"] == "no-store, private"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        # Russian readers get Russian (the customer has no language yet: the browser's).
        async with aiohttp.ClientSession() as http, http.get(
                url, headers={"Accept-Language": "ru-RU,ru;q=0.9"}) as r:
            assert "Отправлен" in await r.text()

        # Tampered: any change to the token is a 403, and says nothing of the order.
        for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"),
                    re.sub(r"^[^.]+", "OTk5", token), token + "x", "x", "a.b.c", "%00"):
            status, html, _ = await _page(f"{api.base}/o/{bad}")
            assert status == 403, bad
            assert "E-1" not in html
        # Expired: 410, once the clock passed [orders] link_days (30).
        clock.advance(days=30, seconds=1)
        status, html, _ = await _page(url)
        assert status == 410 and "expired" in html and "E-1" not in html
        # A fresh link works again; an erased customer's order is gone.
        fresh = (await api.get("/api/v1/orders/E-1")).body["status_url"]
        status, _, _ = await _page(fresh.replace("http://shop.test", api.base))
        assert status == 200
        await api.core.customers.forget(created.body["customer_id"])
        status, html, _ = await _page(fresh.replace("http://shop.test", api.base))
        assert status == 404 and "E-1" not in html


async def test_a_shop_s_data_adds_no_address_to_a_customer_we_know(api: Api) -> None:
    victim = await api.customer("victim@example.com", channel=Channel.EMAIL, text="hi")
    assert (await api.call("PUT", "/api/v1/orders/V-100", json={
        "customer": {"email": "victim@example.com"}, "status": "paid"})).status == 201
    # Someone orders with the victim's email beside their own phone: the order is the
    # victim's, and the phone learns nothing of theirs.
    placed = await api.call("PUT", "/api/v1/orders/V-101", json={
        "customer": {"email": "Victim@Example.com", "phone": "+1 202 555 0199"}})
    assert placed.status == 201 and placed.body["customer_id"] == victim
    assert not await Identity.exists(address="+12025550199")
    await api.core.inbox.receive(InboundMessage(Channel.SMS, "sms-probe-1", "+12025550199",
                                                text="ORDERS"))
    await api.core.inbox.receive(InboundMessage(Channel.SMS, "sms-probe-2", "+12025550199",
                                                text="ORDER V-100"))
    listing, lookup = await api.sms.wait_sent(2)
    assert listing.text.startswith(t("orders_none", "en"))
    assert lookup.text.startswith(t("order_not_found", "en", number="V-100"))
    assert "/o/" not in lookup.text


async def test_an_amount_is_read_in_the_order_s_own_currency(api: Api) -> None:
    cid = await api.customer()
    created = await api.call("PUT", "/api/v1/orders/J-1", json={
        "customer_id": cid, "amount": "1200", "currency": "JPY"})
    assert (created.body["amount"], created.body["currency"]) == ("1200", "JPY")
    updated = await api.call("PUT", "/api/v1/orders/J-1", json={"amount": "1300"})
    assert (updated.body["amount"], updated.body["currency"]) == ("1300", "JPY")
    assert (await Order.get(number="J-1")).amount_minor == 1300
    refused = await api.call("PUT", "/api/v1/orders/J-1", json={"amount": "1300.5"})
    is_problem(refused, 422, "validation-error")
    assert refused.body["errors"][0]["field"] == "amount"


async def test_an_erased_customer_takes_no_new_order(api: Api) -> None:
    cid = await api.customer()
    await api.core.customers.forget(cid)
    is_problem(await api.call("PUT", "/api/v1/orders/X-1", json={"customer_id": cid}), 409,
               "conflict")
    assert not await Order.exists()


async def test_a_status_link_shows_the_order_to_its_customer_only(api: Api) -> None:
    first = await api.call("PUT", "/api/v1/orders/L-1", json={
        "customer": {"email": "first@example.com"}})
    old_link = first.body["status_url"].replace("http://127.0.0.1:8080", api.base)
    assert (await _page(old_link))[0] == 200
    # The shop fixes a wrong email: the order is someone else's, the first link shows nothing.
    moved = await api.call("PUT", "/api/v1/orders/L-1", json={
        "customer": {"email": "second@example.com"}})
    assert moved.body["customer_id"] != first.body["customer_id"]
    status, html, _ = await _page(old_link)
    assert status == 404 and "L-1" not in html
    new_link = moved.body["status_url"].replace("http://127.0.0.1:8080", api.base)
    assert (await _page(new_link))[0] == 200
    # Merged into another customer, the link still opens: the order is theirs.
    other = await api.customer("+12025550123")
    await api.core.customers.merge(moved.body["customer_id"], other)
    assert (await _page(new_link))[0] == 200


async def test_a_status_entered_again_later_is_told_again(api: Api) -> None:
    cid = await api.customer("+12025550143", text="hi")
    await api.call("PUT", "/api/v1/orders/R-1", json={"customer_id": cid})
    for status in ("paid", "shipped", "paid", "paid"):  # the last is no change
        assert (await api.post("/api/v1/orders/R-1/status", {"status": status})).status == 200
    sent = await api.sms.wait_sent(3)
    assert [s.text.split(" is now ")[1].split(".")[0] for s in sent] == [
        "Paid", "Shipped", "Paid"]
    assert await Outbox.filter(idempotency_key__startswith="order:").count() == 3
