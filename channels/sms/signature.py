"""Twilio's request signature (X-Twilio-Signature), by its documented algorithm. Pure.

The full URL Twilio requested, then every POST parameter sorted by name (case-sensitive) with
its value appended, no separators; HMAC-SHA1 keyed with the auth token; base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit


def twilio_signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    pairs = sorted(params)  # by name, then value for repeated names (as Twilio's libraries do)
    data = url + "".join(k + v for k, v in pairs)
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _port_variants(url: str) -> list[str]:
    """Twilio may sign with or without the default port; accept either spelling."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if parts.port is None and default:
        return [url, urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))]
    if parts.port == default:
        netloc = parts.netloc.rsplit(":", 1)[0]
        return [url, urlunsplit(parts._replace(netloc=netloc))]
    return [url]


def valid_twilio_signature(url: str, params: Iterable[tuple[str, str]], auth_token: str,
                           signature: str | None) -> bool:
    if not signature or not auth_token:
        return False
    pairs = list(params)
    return any(hmac.compare_digest(twilio_signature(u, pairs, auth_token), signature)
               for u in _port_variants(url))
