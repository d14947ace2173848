"""API keys over real HTTP: none, wrong, revoked, missing scope, and the per-key rate limit."""

from __future__ import annotations

from typing import Any

from crm.apikeys import Scope, hash_key
from crm.models import ApiKey, AuditLog, Customer
from crm.ratelimit import RateLimiter
from tests.web.conftest import Api


def is_problem(answer: Any, status: int, kind: str) -> None:
    assert answer.status == status, answer.text
    assert answer.content_type == "application/problem+json"
    assert answer.body["type"] == f"urn:chatcrm:problem:{kind}"
    assert answer.body["status"] == status and answer.body["title"] and answer.body["detail"]


async def test_no_key_a_wrong_key_and_a_malformed_header_get_401(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer crm_not-a-real-key"},
                    {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer "}):
        answer = await api.get("/api/v1/customers", key=None, headers=headers)
        is_problem(answer, 401, "unauthorized")
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    # A write without a key stores nothing.
    answer = await api.post("/api/v1/customers", {"name": "Eve"}, key=None)
    is_problem(answer, 401, "unauthorized")
    assert not await Customer.exists()


async def test_a_revoked_key_gets_401(api: Api) -> None:
    key = await api.key_with(Scope.CUSTOMERS_READ, name="shop")
    assert (await api.get("/api/v1/customers", key=key)).status == 200
    await api.core.apikeys.revoke("shop")
    is_problem(await api.get("/api/v1/customers", key=key), 401, "unauthorized")


async def test_a_key_without_the_scope_gets_403_and_nothing_changes(api: Api) -> None:
    cid = await api.customer(name="Ann")
    reader = await api.key_with(Scope.CUSTOMERS_READ, name="reader")
    assert (await api.get(f"/api/v1/customers/{cid}", key=reader)).status == 200
    answer = await api.call("PATCH", f"/api/v1/customers/{cid}", json={"name": "Eve"},
                            key=reader)
    is_problem(answer, 403, "missing-scope")
    assert "customers:write" in answer.body["detail"]
    is_problem(await api.post(f"/api/v1/customers/{cid}/messages", {"text": "hi"}, key=reader),
               403, "missing-scope")
    assert (await Customer.get(id=cid)).name == "Ann"
    assert not await AuditLog.filter(actor="api:reader").exists()


async def test_only_a_hash_of_the_key_is_stored_and_last_use_is_recorded(api: Api) -> None:
    key = await api.key_with(Scope.CUSTOMERS_READ, name="hashed")
    row = await ApiKey.get(name="hashed")
    assert row.key_hash == hash_key(key) and key not in (row.key_hash, row.prefix)
    assert key.startswith(row.prefix) and row.last_used_at is None
    await api.get("/api/v1/customers", key=key)
    assert (await ApiKey.get(name="hashed")).last_used_at is not None


async def test_past_the_rate_limit_a_key_gets_429_with_retry_after(api_with: Any) -> None:
    api: Api = await api_with(api={"rate_per_minute": 1, "burst": 3})
    statuses = [(await api.get("/api/v1/managers")).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    answer = await api.get("/api/v1/managers")
    is_problem(answer, 429, "rate-limited")
    assert int(answer.headers["Retry-After"]) >= 1
    # Another key has its own budget.
    other = await api.key_with(Scope.CONVERSATIONS_READ, name="other")
    assert (await api.get("/api/v1/managers", key=other)).status == 200


def test_the_token_bucket_refills_at_its_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(rate_per_minute=60, burst=2, clock=lambda: now[0])
    assert limiter.take(1) == 0 and limiter.take(1) == 0
    assert limiter.take(1) == 1.0  # one token a second
    now[0] += 0.5
    assert limiter.take(1) == 0.5
    now[0] += 0.5
    assert limiter.take(1) == 0
    assert limiter.take(2) == 0  # keys do not share
