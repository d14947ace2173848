"""API keys: a busy client whose remembered key lapsed is checked once, not once a call."""

from __future__ import annotations

import asyncio

from crm.apikeys import ApiKeys, Scope
from crm.models import ApiKey


async def test_calls_at_once_share_one_lookup(db: str) -> None:
    keys = ApiKeys(remember_seconds=0)  # every call finds its key gone stale
    _row, key = await keys.create("shop", [Scope.CUSTOMERS_READ])
    got = await asyncio.gather(*(keys.authenticate(key) for _ in range(20)))
    assert got[0] is not None and got[0].name == "shop"
    assert all(p is got[0] for p in got)  # one answer, from one lookup
    assert (await ApiKey.get(name="shop")).last_used_at is not None
    assert await asyncio.gather(*(keys.authenticate(key + "x") for _ in range(3))) == [None] * 3

