"""Signed links (crm/links.py): what was signed comes back; any change, another purpose or
another key is tampered; time up is expired, and only for a genuine token. Without a configured
secret, the key generated once is shared by every process and restart on the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm.links import LinkExpired, LinkTampered, Signer, sign, verify
from crm.models import Cursor

KEY = b"k" * 32
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_a_token_carries_its_payload_until_it_expires() -> None:
    token = sign(KEY, "order", "42", NOW + timedelta(days=30))
    assert verify(KEY, "order", token, NOW) == "42"
    assert verify(KEY, "order", token, NOW + timedelta(days=29, hours=23)) == "42"
    with pytest.raises(LinkExpired):
        verify(KEY, "order", token, NOW + timedelta(days=30))
    assert len(token) < 60  # short enough for an SMS


def test_every_change_is_tampered() -> None:
    token = sign(KEY, "order", "42", NOW + timedelta(days=1))
    changed = {token[:i] + c + token[i + 1:] for i in range(len(token))
               for c in "AQgw_-." if c != token[i]}
    for bad in [*changed, token + "A", token[:-1], "", ".", "..", "a.b.c.d", "ü.ü.ü"]:
        with pytest.raises(LinkTampered):
            verify(KEY, "order", bad, NOW)
    with pytest.raises(LinkTampered):
        verify(KEY, "unsubscribe", token, NOW)  # signed for another page
    with pytest.raises(LinkTampered):
        verify(b"x" * 32, "order", token, NOW)


def test_a_forged_expired_token_is_tampered_not_expired() -> None:
    token = sign(b"x" * 32, "order", "42", NOW - timedelta(days=1))
    with pytest.raises(LinkTampered):
        verify(KEY, "order", token, NOW)


async def test_without_a_secret_one_key_is_generated_and_kept_for_every_process(db: str) -> None:
    first, second = Signer("", lambda: NOW), Signer("", lambda: NOW)
    token = await first.sign("order", "42", NOW + timedelta(days=1))
    # Another process (or the service after a restart) reads the same key from the database.
    assert await second.verify("order", token) == "42"
    assert await Cursor.filter(name="links.secret").count() == 1
    # A configured secret is another key: the links made before no longer open.
    with pytest.raises(LinkTampered):
        await Signer("c" * 32, lambda: NOW).verify("order", token)
