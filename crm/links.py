"""Signed, expiring links to our public pages: `/f/<token>` (a file), `/o/<token>` (an order's
status), and the campaigns' `/u/` and `/l/` to come.

A token is `PAYLOAD.EXPIRY.MAC`: the payload in base64url, the expiry in epoch seconds (base 36),
and the first 128 bits of HMAC-SHA256(key, purpose NUL "PAYLOAD.EXPIRY") in base64url. The
purpose ("order", "unsubscribe", …) is signed too, so a token for one page opens no other. The
MAC is checked first and in constant time: a changed token is `LinkTampered` (403) whether or not
it would have expired; only a genuine one can be `LinkExpired` (410). The payload is readable:
put ids in it, never personal data.

The key is `[http] link_secret` (from the environment). Without one, a random key is generated on
first use and kept in the database (`Signer`), so links survive restarts and every process on
the same database signs alike; setting a secret later invalidates the links made before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from datetime import datetime

import structlog
from tortoise.connection import get_connection

from crm import sql
from crm.clock import utcnow
from crm.errors import CrmError

log = structlog.get_logger(__name__)

_MAC_BYTES = 16


class LinkTampered(CrmError):
    """Not a token we made: changed, truncated, or for another page."""


class LinkExpired(CrmError):
    """A token we made whose time is up."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    # Strict: a character outside the alphabet is an error, not silently dropped.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _mac(key: bytes, purpose: str, body: str) -> bytes:
    return hmac.new(key, purpose.encode() + b"\0" + body.encode(), hashlib.sha256).digest()


def sign(key: bytes, purpose: str, payload: str, expires_at: datetime) -> str:
    body = f"{_b64(payload.encode())}.{_base36(int(expires_at.timestamp()))}"
    return f"{body}.{_b64(_mac(key, purpose, body)[:_MAC_BYTES])}"


def verify(key: bytes, purpose: str, token: str, now: datetime) -> str:
    """The payload of a genuine, unexpired token; LinkTampered or LinkExpired otherwise."""
    body, _, mac = token.rpartition(".")
    # The MAC is compared as the text we would write: base64 has several spellings of the same
    # bytes (the unused bits of the last character), and a token must have exactly one.
    expected = _b64(_mac(key, purpose, body)[:_MAC_BYTES])
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        raise LinkTampered("not a link we made")
    try:
        payload, expiry = body.split(".")
        text = _unb64(payload).decode()
        expires = int(expiry, 36)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise LinkTampered("not a link we made") from None
    if now.timestamp() >= expires:
        raise LinkExpired("this link has expired")
    return text


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


_KEY_CURSOR = "links.secret"


class Signer:
    """Signs and checks the tokens of every public link with one key (`/f/`, `/o/`, …).

    The key is `[http] link_secret`, or the one generated once and kept in the database: read
    on first use and remembered. Call `key()` once at start-up (crm/app.py), outside any
    request's transaction, so a generated key is never used that a rollback did not keep.
    """

    def __init__(self, configured: str, clock: Callable[[], datetime]) -> None:
        self.configured = configured
        self.clock = clock
        self._key: bytes | None = None

    async def key(self) -> bytes:
        if self._key is None:
            self._key = await _stored_key(self.configured)
        return self._key

    async def sign(self, purpose: str, payload: str, expires_at: datetime) -> str:
        return sign(await self.key(), purpose, payload, expires_at)

    async def verify(self, purpose: str, token: str) -> str:
        """The payload of a genuine, unexpired token; LinkTampered or LinkExpired otherwise."""
        return verify(await self.key(), purpose, token, self.clock())


async def _stored_key(configured: str) -> bytes:
    """`[http] link_secret`, or the key generated once and kept in the database (made on
    first use; two processes making it at once both end up with the first one's)."""
    if configured:
        return configured.encode()
    conn = get_connection("default")
    rows = await sql.fetch(conn, "SELECT value FROM cursor WHERE name = ?", [_KEY_CURSOR])
    if not rows:
        log.warning("links.secret_generated", hint="no [http] link_secret: signing with a key "
                    "generated now and kept in the database; set CRM_LINK_SECRET to choose one")
        # One statement that cannot fail on a race, so it is safe inside any transaction.
        await sql.execute(conn, "INSERT INTO cursor (name, value, updated_at) VALUES (?, ?, ?) "
                                "ON CONFLICT (name) DO NOTHING",
                          [_KEY_CURSOR, json.dumps({"key": secrets.token_hex(32)}), utcnow()])
        rows = await sql.fetch(conn, "SELECT value FROM cursor WHERE name = ?", [_KEY_CURSOR])
    value = rows[0]["value"]
    data = json.loads(value) if isinstance(value, str) else value
    return str(data["key"]).encode()
