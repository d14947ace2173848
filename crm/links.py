"""Signed, expiring tokens for public links (`/f/<token>` file downloads, and others to come).

A token is `base64url(JSON {"p": payload, "x": expiry})` + "." + `base64url(HMAC-SHA256(secret,
purpose + "." + body))`: the purpose keeps a token made for one kind of link from opening
another; the expiry is inside the signed part. The secret comes from the config or the
environment (`[http] link_secret = "${CRM_LINK_SECRET}"`), never from the code. A token that was
changed is `LinkInvalid` (HTTP 403); one past its time, `LinkExpired` (HTTP 410).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from crm.errors import CrmError


class LinkInvalid(CrmError):
    """A token that was not made by us for this purpose (tampered, truncated, other purpose)."""


class LinkExpired(CrmError):
    """A genuine token whose time is over."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, body: str) -> bytes:
    return hmac.new(secret.encode(), f"{purpose}.{body}".encode(), hashlib.sha256).digest()


def sign(secret: str, purpose: str, payload: Any, expires_at: datetime) -> str:
    if not secret:
        raise CrmError("no [http] link_secret is configured: links cannot be signed")
    body = _b64(json.dumps({"p": payload, "x": int(expires_at.timestamp())},
                           separators=(",", ":")).encode())
    return f"{body}.{_b64(_mac(secret, purpose, body))}"


def verify(secret: str, purpose: str, token: str, now: datetime) -> Any:
    """The payload of a token we made for `purpose`; LinkInvalid or LinkExpired otherwise."""
    body, dot, mac = token.partition(".")
    if not secret or not dot:
        raise LinkInvalid("this link is not valid")
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        raise LinkInvalid("this link is not valid") from None
    if not hmac.compare_digest(given, _mac(secret, purpose, body)):
        raise LinkInvalid("this link is not valid")
    data = json.loads(_unb64(body))
    if int(data["x"]) < now.timestamp():
        raise LinkExpired("this link has expired")
    return data["p"]
