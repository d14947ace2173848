"""Opaque cursors for keyset pagination: where the last page stopped, not an offset.

A page ends at a row; the next page starts after that row's sort key (e.g. `(last_seen_at, id)`),
so rows inserted meanwhile never shift a page or repeat one. The cursor is that key as JSON in
base64url, marked with the list it belongs to; clients pass it back unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

import orjson

from crm.errors import CrmError

MAX_ID = 2**63 - 1  # BIGINT; SQLite's INTEGER holds the same

class InvalidCursor(CrmError):
    """A cursor that this list did not hand out (tampered, truncated, or from another list)."""


# One encoder for every cursor: json.dumps with separators builds a new one at each call.
_compact = json.JSONEncoder(separators=(",", ":")).encode


def encode(kind: str, *values: Any) -> str:
    raw = _compact([kind, *values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str, *types: type) -> tuple[Any, ...]:
    """The key values of a cursor of list `kind`, each of the given type (or None)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        # orjson reads a cursor in a third of json's time; its errors are ValueErrors, and an
        # integer past 64 bits comes back a float (refused below, as such an id cannot exist).
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError):
        raise InvalidCursor("the cursor is not one this API handed out: pass next_cursor "
                            "from the previous page unchanged") from None
    if not isinstance(data, list) or len(data) != len(types) + 1 or data[0] != kind:
        raise InvalidCursor("the cursor belongs to another list, or was changed")
    values = data[1:]
    for value, want in zip(values, types, strict=True):
        if value is not None and (not isinstance(value, want) or isinstance(value, bool)):
            raise InvalidCursor("the cursor was changed")
        # Ids are database integers, times ISO datetimes: anything else was never handed out
        # (and would fail in the query instead of here).
        if isinstance(value, int) and not 0 <= value <= MAX_ID:
            raise InvalidCursor("the cursor was changed")
        if isinstance(value, str) and want is str:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise InvalidCursor("the cursor was changed") from None
    return tuple(values)
