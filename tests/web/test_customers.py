"""Customers through the API: list, read, create, update, identities, merge, consent, export,
forget; every write audited with the key's name, every bad request refused with nothing stored."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from crm.models import AuditLog, Customer, Identity
from crm.types import Channel, ConsentKind
from tests.web.conftest import Api
from tests.web.test_auth import is_problem


async def test_get_a_customer_with_identities_consent_and_conversations(api: Api) -> None:
    cid = await api.customer(name="<img src=x onerror=alert(1)>", text="<b>hi</b>")
    answer = await api.get(f"/api/v1/customers/{cid}")
    assert answer.status == 200 and answer.content_type == "application/json"
    body = answer.body
    # Customer text is JSON data, as written: never HTML, never escaped into markup.
    assert body["name"] == "<img src=x onerror=alert(1)>"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert [(i["channel"], i["address"]) for i in body["identities"]] == [
        ("sms", "+12025550143")]
    assert {(c["kind"], c["channel"], c["granted"]) for c in body["consent"]} == {
        ("marketing", "sms", True), ("marketing", None, True),
        ("notifications", "sms", True), ("notifications", None, True)}
    assert body["conversations"]["counts"] == {"open": 1, "waiting": 0, "closed": 0}
    assert body["conversations"]["latest"]["status"] == "open"
    is_problem(await api.get("/api/v1/customers/999999"), 404, "not-found")
    is_problem(await api.get("/api/v1/customers/abc"), 404, "not-found")
    is_problem(await api.get("/api/v1/customers/99999999999"), 404, "not-found")


async def test_list_filters_and_cursor_pages_stay_stable_under_inserts(api: Api) -> None:
    ids = [await api.customer(f"+1202555{n:04d}", name=f"Person {n}") for n in range(5)]
    await api.core.customers.update(ids[1], tags=["vip"])
    await api.core.customers.create(identities=[(Channel.EMAIL, "zoe@example.com")],
                                    actor="test", name="Zoe")  # never seen: listed last
    first = await api.get("/api/v1/customers", params={"limit": "2"})
    assert first.status == 200
    page1 = [c["id"] for c in first.body["items"]]
    assert page1 == [ids[4], ids[3]]  # most recently seen first
    # A customer arriving meanwhile does not shift the next page.
    await api.customer("+12025559999", name="Newcomer")
    second = await api.get("/api/v1/customers",
                           params={"limit": "2", "cursor": first.body["next_cursor"]})
    assert [c["id"] for c in second.body["items"]] == [ids[2], ids[1]]
    third = await api.get("/api/v1/customers",
                          params={"limit": "2", "cursor": second.body["next_cursor"]})
    names = [c["name"] for c in third.body["items"]]
    assert names == ["Person 0", "Zoe"] and third.body["next_cursor"] is None

    by_tag = await api.get("/api/v1/customers", params={"tag": "vip"})
    assert [c["id"] for c in by_tag.body["items"]] == [ids[1]]
    by_channel = await api.get("/api/v1/customers", params={"channel": "email"})
    assert [c["name"] for c in by_channel.body["items"]] == ["Zoe"]
    by_text = await api.get("/api/v1/customers", params={"q": "5550003"})
    assert [c["id"] for c in by_text.body["items"]] == [ids[3]]
    assert [c["name"] for c in (await api.get("/api/v1/customers", params={
        "q": "PERSON 2"})).body["items"]] == ["Person 2"]
    now = api.core.clock()
    recent = await api.get("/api/v1/customers", params={
        "seen_after": (now - timedelta(hours=1)).isoformat(),
        "created_before": (now + timedelta(hours=1)).isoformat()})
    assert len(recent.body["items"]) == 6  # Zoe was never seen
    future = await api.get("/api/v1/customers", params={"created_after": (
        now + timedelta(days=1)).isoformat()})
    assert future.body["items"] == []
    # Case does not matter in any script, on SQLite as on PostgreSQL.
    olga = await api.customer("+12025550100", name="Ольга Иванова")
    for q in ("ольга", "ОЛЬГА", "Иван", "иВАНОВА"):
        found = await api.get("/api/v1/customers", params={"q": q})
        assert [c["id"] for c in found.body["items"]] == [olga], q


async def test_a_customer_who_writes_while_a_client_pages_moves_up_as_documented(
        api: Api) -> None:
    ids = [await api.customer(f"+1202555{n:04d}", name=f"P{n}") for n in range(4)]
    now = api.core.clock()
    for n, cid in enumerate(ids):  # they wrote hours ago, P3 last
        await Customer.filter(id=cid).update(last_seen_at=now - timedelta(hours=5 - n))
    walk_began = api.core.clock()
    first = await api.get("/api/v1/customers", params={"limit": "2"})
    assert [c["name"] for c in first.body["items"]] == ["P3", "P2"]
    await api.customer("+12025550001", text="me again")  # P1 jumps to the top...
    await api.customer("+12025550003", text="me too")  # ...and P3, listed already
    rest = await api.get("/api/v1/customers",
                         params={"limit": "2", "cursor": first.body["next_cursor"]})
    # Nothing twice, and P1, whom the walk had not reached, is skipped...
    assert [c["name"] for c in rest.body["items"]] == ["P0"]
    assert rest.body["next_cursor"] is None
    # ...and found as the README says: those seen since the walk began.
    since = await api.get("/api/v1/customers", params={"seen_after": walk_began.isoformat()})
    assert [c["name"] for c in since.body["items"]] == ["P3", "P1"]


async def test_list_refuses_bad_parameters(api: Api) -> None:
    for params, field in (({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"),
                          ({"channel": "fax"}, "channel"), ({"colour": "red"}, "colour"),
                          ({"seen_after": "2026-01-01T00:00:00"}, "seen_after")):
        answer = await api.get("/api/v1/customers", params=params)
        is_problem(answer, 422, "validation-error")
        assert [e["field"] for e in answer.body["errors"]] == [field], params
        assert answer.body["errors"][0]["in"] == "query"
    is_problem(await api.get("/api/v1/customers", params={"cursor": "garbage!"}), 400,
               "invalid-cursor")
    conversations = (await api.get("/api/v1/conversations")).body
    assert conversations["next_cursor"] is None


async def test_create_update_and_audit_with_the_key_name(api: Api) -> None:
    answer = await api.post("/api/v1/customers", {
        "name": "Olga", "language": "ru", "timezone": "Europe/Moscow", "tags": ["b", "a", "a"],
        "attributes": {"plan": "gold", "seats": 3}, "lead_source": "fair",
        "identities": [{"channel": "email", "address": "Olga@Example.COM"},
                       {"channel": "sms", "address": "+1 (202) 555-0177"}]})
    assert answer.status == 201, answer.text
    body = answer.body
    assert answer.headers["Location"] == f"/api/v1/customers/{body['id']}"
    assert body["tags"] == ["a", "b"] and body["attributes"] == {"plan": "gold", "seats": 3}
    assert sorted(i["address"] for i in body["identities"]) == ["+12025550177",
                                                                "olga@example.com"]
    cid = body["id"]
    patched = await api.call("PATCH", f"/api/v1/customers/{cid}",
                             json={"name": "Olga K.", "tags": ["vip"]})
    assert patched.status == 200, patched.text
    assert patched.body["name"] == "Olga K." and patched.body["tags"] == ["vip"]
    assert patched.body["language"] == "ru"  # not given: unchanged
    audit = await AuditLog.filter(customer_id=cid).order_by("id").values_list("actor", "action")
    assert audit == [("api:default", "customer.created"), ("api:default", "customer.updated")]


async def test_bad_bodies_are_refused_and_nothing_is_stored(api: Api) -> None:
    cases = [
        ({"name": 5}, "name", "string_type"),
        ({"name": "A", "nickname": "x"}, "nickname", "extra_forbidden"),
        ({"tags": "vip"}, "tags", "list_type"),
        ({"timezone": "Mars/Base"}, "timezone", "value_error"),
        ({"identities": [{"channel": "fax", "address": "1"}]}, "identities.0.channel",
         "literal_error"),
        ({"identities": [{"channel": "sms"}]}, "identities.0.address", "missing"),
        ({"language": 7, "tags": [1]}, None, None),
    ]
    for body, field, code in cases:
        answer = await api.post("/api/v1/customers", body)
        is_problem(answer, 422, "validation-error")
        if field is not None:
            [error] = answer.body["errors"]
            assert (error["in"], error["field"], error["code"]) == ("body", field, code), body
            assert error["message"]
        else:
            assert {e["field"] for e in answer.body["errors"]} == {"language", "tags.0"}
    bad_phone = await api.post("/api/v1/customers", {
        "name": "A", "identities": [{"channel": "sms", "address": "12"}]})
    is_problem(bad_phone, 422, "validation-error")
    [error] = bad_phone.body["errors"]
    assert (error["field"], error["code"]) == ("identities.0.address", "invalid_address")
    malformed = await api.call("POST", "/api/v1/customers", data=b'{"name": "A",',
                               headers={"Content-Type": "application/json"})
    is_problem(malformed, 400, "malformed-json")
    not_json = await api.call("POST", "/api/v1/customers", data=b"name=A",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    is_problem(not_json, 415, "unsupported-media-type")
    big = json.dumps({"name": "A", "attributes": {"blob": "x" * (2 * 1024 * 1024)}})
    huge = await api.call("POST", "/api/v1/customers", data=io.BytesIO(big.encode()),
                          headers={"Content-Type": "application/json"})
    is_problem(huge, 413, "body-too-large")
    empty_patch = await api.call("PATCH", "/api/v1/customers/1", json={})
    is_problem(empty_patch, 422, "validation-error")
    assert not await Customer.exists()
    assert not await AuditLog.filter(actor="api:default").exists()


async def test_identities_added_removed_and_an_address_of_someone_else_is_409(api: Api) -> None:
    ann = await api.customer("+12025550143", name="Ann")
    bob = await api.customer("+12025550144", name="Bob")
    added = await api.post(f"/api/v1/customers/{ann}/identities",
                           {"channel": "email", "address": "ann@example.com"})
    assert added.status == 201
    email = next(i for i in added.body["identities"] if i["channel"] == "email")
    taken = await api.post(f"/api/v1/customers/{bob}/identities",
                           {"channel": "email", "address": "ANN@example.com"})
    is_problem(taken, 409, "conflict")
    assert f"#{ann}" in taken.body["detail"]
    assert await Identity.filter(customer_id=bob).count() == 1
    gone = await api.call("DELETE", f"/api/v1/customers/{ann}/identities/{email['id']}")
    assert gone.status == 200 and [i["channel"] for i in gone.body["identities"]] == ["sms"]
    is_problem(await api.call("DELETE", f"/api/v1/customers/{bob}/identities/{email['id']}"),
               404, "not-found")
    clash = await api.post("/api/v1/customers", {
        "name": "Twin", "identities": [{"channel": "sms", "address": "+12025550144"}]})
    is_problem(clash, 409, "conflict")
    assert not await Customer.filter(name="Twin").exists()


async def test_merge_consent_export_and_forget(api: Api) -> None:
    ann = await api.customer("+12025550143", name="Ann")
    dup = await api.customer("+12025550188", name=None, text="me again")
    merged = await api.post(f"/api/v1/customers/{ann}/merge", {"source_id": dup})
    assert merged.status == 200 and merged.body["id"] == ann
    assert len(merged.body["identities"]) == 2
    assert (await api.get(f"/api/v1/customers/{dup}")).body["id"] == ann  # follows the merge
    is_problem(await api.post(f"/api/v1/customers/{ann}/merge", {"source_id": ann}), 422,
               "rejected")
    # An id in the body that leads nowhere names the field; a missing id in the path is a 404.
    nobody = await api.post(f"/api/v1/customers/{ann}/merge", {"source_id": 4242})
    is_problem(nobody, 422, "validation-error")
    assert [(e["in"], e["field"], e["code"]) for e in nobody.body["errors"]] == [
        ("body", "source_id", "not_found")]
    other = await api.customer("+12025550199", name="Other")
    is_problem(await api.post("/api/v1/customers/4242/merge", {"source_id": other}), 404,
               "not-found")
    assert (await api.get(f"/api/v1/customers/{other}")).body["id"] == other  # not merged

    consent = await api.post(f"/api/v1/customers/{ann}/consent",
                             {"kind": "marketing", "granted": False, "channel": "sms"})
    assert consent.status == 200, consent.text
    sms = next(c for c in consent.body["consent"]
               if c["kind"] == "marketing" and c["channel"] == "sms")
    assert sms["granted"] is False and sms["source"] == "api"
    assert not await api.core.consent.allows(ann, ConsentKind.MARKETING, Channel.SMS)
    is_problem(await api.post(f"/api/v1/customers/{ann}/consent", {"kind": "spam",
                                                                    "granted": False}),
               422, "validation-error")

    export = await api.get(f"/api/v1/customers/{ann}/export")
    assert export.status == 200
    assert export.body["customer"]["name"] == "Ann" and len(export.body["messages"]) == 2
    forgotten = await api.post(f"/api/v1/customers/{ann}/forget")
    assert forgotten.status == 200 and forgotten.body["counts"]["messages"] == 2
    after = await api.get(f"/api/v1/customers/{ann}")
    assert after.body["name"] is None and after.body["erased_at"] is not None
    assert after.body["identities"] == []
    actions = set(await AuditLog.filter(actor="api:default").values_list("action", flat=True))
    assert {"customer.merged", "consent.changed", "customer.exported",
            "customer.forgotten"} <= actions


async def test_an_sms_opt_out_through_the_api_stops_every_message_by_sms(api: Api) -> None:
    """The carriers' rule holds whoever passes the word on: marketing off by SMS stops order
    updates by SMS too, marketing on brings both back; notifications alone are their own."""
    ann = await api.customer("+12025550177", name="Ann")

    async def sms_states(body: dict) -> dict[str, bool]:
        assert body is not None
        return {c["kind"]: c["granted"] for c in body["consent"] if c["channel"] == "sms"}

    off = await api.post(f"/api/v1/customers/{ann}/consent",
                         {"kind": "marketing", "granted": False, "channel": "sms"})
    assert off.status == 200, off.text
    assert await sms_states(off.body) == {"marketing": False, "notifications": False}
    assert not await api.core.consent.allows(ann, ConsentKind.NOTIFICATIONS, Channel.SMS)
    assert await api.core.consent.allows(ann, ConsentKind.NOTIFICATIONS, Channel.EMAIL)
    on = await api.post(f"/api/v1/customers/{ann}/consent",
                        {"kind": "marketing", "granted": True, "channel": "sms"})
    assert await sms_states(on.body) == {"marketing": True, "notifications": True}
    updates = await api.post(f"/api/v1/customers/{ann}/consent",
                             {"kind": "notifications", "granted": False, "channel": "sms"})
    assert await sms_states(updates.body) == {"marketing": True, "notifications": False}
    audit = await AuditLog.filter(customer_id=ann, action="consent.changed").order_by("id")
    assert [(a.detail["kind"], a.detail["granted"], a.detail["source"]) for a in audit] == [
        ("marketing", False, "api"), ("notifications", False, "api"),
        ("marketing", True, "api"), ("notifications", True, "api"),
        ("notifications", False, "api")]
