"""Who is calling, and may they: the bearer key, its rate limit, its scopes.

Order matters: an unknown key learns nothing (401 before anything else), a known key is counted
against its rate limit before its scope is checked, so refused calls cost the same as others.
"""

from __future__ import annotations

import math

from aiohttp import web

from crm.apikeys import ApiKeys, Principal, Scope
from crm.ratelimit import RateLimiter
from web.api.problems import ApiProblem

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="chatcrm"'}


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
