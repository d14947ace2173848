"""API keys: create (the key is shown once), list, revoke, and check a presented key.

Only a SHA-256 hash of each key is stored. A fast hash is right here, unlike for passwords: a key
is 256 random bits made by us, so no amount of hashing speed makes guessing it feasible, while a
slow password hash (argon2: ~76 ms) would be paid on every request and block the event loop.
Keys are looked up by their hash, so checking one is one indexed query and leaks nothing through
timing that would help to guess another. A key that checked out is remembered for two seconds, so
a busy client costs no query per call: a revocation takes effect at once in the process that
made it, and within those seconds in the others (another `crm run`, or after `crm apikeys
revoke`).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import structlog
from tortoise.exceptions import IntegrityError

from crm.clock import Clock, utcnow
from crm.errors import CrmError, NotFound
from crm.models import ApiKey, AuditLog

log = structlog.get_logger(__name__)

KEY_PREFIX = "crm_"
_PREFIX_SHOWN = 12  # "crm_" and 8 characters of the key: enough to tell keys apart
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# last_used_at is for people ("used 3 minutes ago"): a minute's precision spares a write per call.
_USED_PRECISION = timedelta(seconds=60)
_REMEMBER_SECONDS = 2.0


class Scope(StrEnum):
    """What a key may do. Each endpoint of the API names the scope it needs."""

    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    CONVERSATIONS_READ = "conversations:read"
    CONVERSATIONS_WRITE = "conversations:write"
    MESSAGES_SEND = "messages:send"
    # Granted now so keys can be made ahead; the orders, campaigns and reports endpoints use them.
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"
    REPORTS_READ = "reports:read"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key that checked out, with its scopes."""

    key_id: int
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"api:{self.name}"

    def allows(self, scope: Scope) -> bool:
        return scope.value in self.scopes


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeys:
    def __init__(self, clock: Clock = utcnow, remember_seconds: float = _REMEMBER_SECONDS
                 ) -> None:
        self.clock = clock
        self.remember_seconds = remember_seconds
        self._known: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Principal | None]] = {}
        self._revocations = 0

    async def create(self, name: str, scopes: Iterable[Scope | str],
                     actor: str = "cli") -> tuple[ApiKey, str]:
        """Make a key; returns the row and the key itself, which is never stored or shown again."""
        if not _NAME.match(name):
            raise CrmError(f"{name!r} is not a key name: use up to 64 letters, digits, '.', '_' "
                           "or '-', starting with a letter or digit")
        wanted = sorted({Scope(s).value for s in scopes})
        if not wanted:
            raise CrmError("give the key at least one scope (--scope customers:read, …)")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            row = await ApiKey.create(name=name, prefix=key[:_PREFIX_SHOWN],
                                      key_hash=hash_key(key), scopes=wanted,
                                      created_by=actor[:200])
        except IntegrityError:
            raise CrmError(f"a key named {name!r} exists already (revoked keys keep their "
                           "names): choose another name") from None
        await AuditLog.create(actor=actor[:200], action="apikey.created",
                              detail={"name": name, "scopes": wanted})
        log.info("apikey.created", name=name, scopes=wanted)
        return row, key

    async def list(self, include_revoked: bool = True) -> list[ApiKey]:
        qs = ApiKey.all() if include_revoked else ApiKey.filter(revoked_at=None)
        return await qs.order_by("name")

    async def revoke(self, name: str, actor: str = "cli") -> ApiKey:
        row = await ApiKey.filter(name=name).first()
        if row is None:
            raise NotFound(f"no API key named {name!r} (see `crm apikeys list`)")
        if row.revoked_at is not None:
            raise CrmError(f"the key {name!r} was already revoked on {row.revoked_at:%Y-%m-%d}")
        row.revoked_at = self.clock()
        await row.save(update_fields=["revoked_at"])
        self._known.clear()
        self._pending.clear()
        self._revocations += 1
        await AuditLog.create(actor=actor[:200], action="apikey.revoked", detail={"name": name})
        log.info("apikey.revoked", name=name)
        return row

    async def authenticate(self, key: str) -> Principal | None:
        """The caller behind a presented key, or None for a wrong or revoked one."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        digest = hash_key(key)
        known = self._known.get(digest)
        if known is not None and time.monotonic() < known[0]:
            return known[1]
        # When the remembered answer lapses, a busy client has many calls in flight: one
        # lookup answers them all, rather than one query (and update) each.
        pending = self._pending.get(digest)
        if pending is None:
            pending = self._pending[digest] = asyncio.ensure_future(self._look_up(digest))
            pending.add_done_callback(lambda done: self._lookup_done(digest, done))
        return await asyncio.shield(pending)

    def _lookup_done(self, digest: str, done: asyncio.Future[Principal | None]) -> None:
        if self._pending.get(digest) is done:
            del self._pending[digest]

    async def _look_up(self, digest: str) -> Principal | None:
        revocations = self._revocations
        row = await ApiKey.filter(key_hash=digest).only(
            "id", "name", "scopes", "last_used_at", "revoked_at").first()
        if row is None or row.revoked_at is not None:
            return None
        now = self.clock()
        if row.last_used_at is None or now - row.last_used_at >= _USED_PRECISION:
            await ApiKey.filter(id=row.id).update(last_used_at=now)
        principal = Principal(row.id, row.name, frozenset(row.scopes))
        if revocations != self._revocations:  # read before a revocation here: not remembered
            return principal
        self._known[digest] = (time.monotonic() + self.remember_seconds, principal)
        self._known.move_to_end(digest)
        if len(self._known) > 1000:
            self._known.popitem(last=False)
        return principal

