"""Who is calling, and may they: the bearer key, its rate limit, its scopes.

Order matters: an unknown key learns nothing (401 before anything else), a known key is counted
against its rate limit before its scope is checked, so refused calls cost the same as others.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from crm.apikeys import ApiKeys, Principal, Scope
from web.api.problems import ApiProblem

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="chatcrm"'}


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key: `rate_per_minute` on average, bursts up to `burst`. Per process."""

    def __init__(self, rate_per_minute: float, burst: int,
                 clock: Callable[[], float] = time.monotonic, size: int = 10_000) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._size = size
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()

    def take(self, key_id: int) -> float:
        """Spend one token; returns 0 if allowed, else the seconds until one is available."""
        now = self.clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(self.burst, now)
            if len(self._buckets) > self._size:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key_id)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


class Gate:
    def __init__(self, keys: ApiKeys, limiter: RateLimiter) -> None:
        self.keys = keys
        self.limiter = limiter

    async def check(self, request: web.Request, scopes: tuple[Scope, ...]) -> Principal:
        header = request.headers.get("Authorization", "")
        kind, _, token = header.partition(" ")
        if not header:
            raise ApiProblem(401, "unauthorized", "send an API key: Authorization: Bearer KEY "
                             "(create one with `crm apikeys create`)", headers=_CHALLENGE)
        if kind.lower() != "bearer" or not token.strip():
            raise ApiProblem(401, "unauthorized", "the Authorization header must be "
                             "'Bearer KEY'", headers=_CHALLENGE)
        principal = await self.keys.authenticate(token.strip())
        if principal is None:
            raise ApiProblem(401, "unauthorized", "the API key is wrong or was revoked",
                             headers=_CHALLENGE)
        wait = self.limiter.take(principal.key_id)
        if wait > 0:
            raise ApiProblem(429, "rate-limited", f"too many requests for key "
                             f"{principal.name!r}: retry in {math.ceil(wait)} s",
                             headers={"Retry-After": str(max(1, math.ceil(wait)))})
        if scopes and not any(principal.allows(s) for s in scopes):
            needed = " or ".join(s.value for s in scopes)
            raise ApiProblem(403, "missing-scope", f"the key {principal.name!r} lacks the scope "
                             f"{needed}")
        return principal
