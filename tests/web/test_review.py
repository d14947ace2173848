"""What a fresh look at the API found: scopes that read too much, erased customers written to
again, cursors and values the databases cannot take, times in other offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from crm.apikeys import Scope
from crm.models import Customer, Message
from crm.pagination import encode
from tests.web.conftest import Api
from tests.web.test_auth import is_problem


async def test_a_sending_key_reads_only_what_it_sent(api: Api) -> None:
    other = await api.customer("+12025550101", "my secret address is 1 Main St")
    secret = await Message.get(customer_id=other)
    sender = await api.key_with(Scope.MESSAGES_SEND)
    sent = await api.post(f"/api/v1/customers/{other}/messages", {"text": "Hi"}, key=sender)
    assert sent.status == 202
    assert (await api.get(f"/api/v1/messages/{sent.body['id']}", key=sender)).status == 200
    is_problem(await api.get(f"/api/v1/messages/{secret.id}", key=sender), 404, "not-found")
    # A key that reads conversations reads them all.
    assert (await api.get(f"/api/v1/messages/{secret.id}")).status == 200


async def test_an_export_needs_the_conversations_too(api: Api) -> None:
    cid = await api.customer()
    reader = await api.key_with(Scope.CUSTOMERS_READ)
    is_problem(await api.get(f"/api/v1/customers/{cid}/export", key=reader), 403,
               "missing-scope")
    both = await api.key_with(Scope.CUSTOMERS_READ, Scope.CONVERSATIONS_READ)
    assert (await api.get(f"/api/v1/customers/{cid}/export", key=both)).status == 200


async def test_an_erased_customer_takes_nothing_new(api: Api) -> None:
    cid = await api.customer()
    assert (await api.post(f"/api/v1/customers/{cid}/forget")).status == 200
    patched = await api.call("PATCH", f"/api/v1/customers/{cid}",
                             json={"name": "Ann again"})
    is_problem(patched, 409, "conflict")
    is_problem(await api.post(f"/api/v1/customers/{cid}/identities",
                              {"channel": "sms", "address": "+12025550199"}), 409, "conflict")
    is_problem(await api.post(f"/api/v1/customers/{cid}/consent",
                              {"kind": "marketing", "granted": True}), 409, "conflict")
    assert (await Customer.get(id=cid)).name is None


async def test_cursors_that_were_never_handed_out_are_400s(api: Api) -> None:
    for path, cursor in (("/api/v1/customers", encode("customers", "garbage", 1)),
                         ("/api/v1/customers", encode("customers", None, 10**30)),
                         ("/api/v1/conversations", encode("conversations", 10**30)),
                         ("/api/v1/conversations", encode("conversations", -1))):
        is_problem(await api.get(path, params={"cursor": cursor}), 400, "invalid-cursor")


async def test_nul_characters_and_nan_are_422s_naming_the_field(api: Api) -> None:
    cases = (({"name": "a\u0000b"}, "name", "string_nul"),
             ({"name": "A", "attributes": {"x": float("nan")}}, "attributes.x", "finite_number"))
    for body, field, code in cases:
        answer = await api.post("/api/v1/customers", body)
        is_problem(answer, 422, "validation-error")
        [error] = answer.body["errors"]
        assert (error["field"], error["code"]) == (field, code)
    is_problem(await api.get("/api/v1/customers", params={"q": "a\u0000b"}), 422,
               "validation-error")
    assert await Customer.all().count() == 0


async def test_date_filters_in_any_offset_mean_the_same_moment(api: Api) -> None:
    await api.customer()
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    soon = datetime.now(UTC) + timedelta(hours=1)
    for zone in (UTC, timezone(timedelta(hours=5)), timezone(timedelta(hours=-5))):
        found = await api.get("/api/v1/customers", params={
            "created_after": hour_ago.astimezone(zone).isoformat(),
            "created_before": soon.astimezone(zone).isoformat()})
        assert found.status == 200 and len(found.body["items"]) == 1, zone
