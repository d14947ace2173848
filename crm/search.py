"""Search: customers by name or address, messages by text, for `/find`, `crm customers find`
and (later) the web console.

Words are matched as prefixes ("parc" finds "parcel"), all of them, case-insensitively in any
script, through the indexes of migration 0006: FTS5 (unicode61) on SQLite, `to_tsvector('simple',
…)` GIN indexes on PostgreSQL: the same tokenising (words, lower-cased, no stemming) on both, so
both databases answer alike. Addresses (emails, phone numbers) are matched as substrings.
Erased customers are not found; a merged one is found as the customer it was merged into.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sql
from crm.types import Channel, Direction

MAX_WORDS = 8
SNIPPET = 120


@dataclass(frozen=True, slots=True)
class CustomerHit:
    id: int
    name: str | None
    addresses: list[str]
    thread_id: int | None  # their topic in the managers' group, if they have one


@dataclass(frozen=True, slots=True)
class MessageHit:
    id: int
    customer_id: int
    customer_name: str | None
    channel: Channel
    direction: Direction
    snippet: str
    created_at: datetime | None
    thread_id: int | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    customers: list[CustomerHit]
    messages: list[MessageHit]


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())[:MAX_WORDS]


def fts_query(found: list[str], postgres: bool) -> str:
    """Every word as a prefix; the words are \\w only, so nothing in them is syntax."""
    if postgres:
        return " & ".join(f"{w}:*" for w in found)
    return " ".join(f'"{w}"*' for w in found)


def snippet(text: str, found: list[str], width: int = SNIPPET) -> str:
    flat = " ".join(text.split())
    lower = flat.lower()
    at = min((i for i in (lower.find(w) for w in found) if i >= 0), default=0)
    start = max(0, at - width // 3)
    piece = flat[start:start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(flat) else "")


async def find(conn: BaseDBAsyncClient, text: str, limit: int = 10,
               topics_in: int | None = None) -> SearchResult:
    """Matching customers (most recently seen first) and messages (newest first)."""
    found = words(text)
    needle = text.strip().lower()
    if not needle:
        return SearchResult([], [])
    postgres = sql.is_postgres(conn)
    query = fts_query(found, postgres) if found else None
    like = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    name_match = ("to_tsvector('simple', COALESCE(c.name, '')) @@ to_tsquery('simple', ?)"
                  if postgres else
                  "c.id IN (SELECT rowid FROM customer_fts WHERE customer_fts MATCH ?)")
    where = [f"({name_match} OR " if query else "(",
             "EXISTS (SELECT 1 FROM identity i WHERE i.customer_id = c.id "
             "AND LOWER(i.address) LIKE ? ESCAPE '\\'))"]
    params: list[object] = [*([query] if query else []), like]
    rows = await sql.fetch(
        conn, "SELECT c.id, c.name, t.thread_id FROM customer c LEFT JOIN customer_topic t "
        "ON t.customer_id = c.id AND t.chat_id = ? WHERE c.merged_into_id IS NULL AND "
        f"c.erased_at IS NULL AND {''.join(where)} "
        "ORDER BY c.last_seen_at DESC NULLS LAST, c.id DESC LIMIT ?",
        [topics_in, *params, limit])
    addresses: dict[int, list[str]] = {}
    if rows:
        ids = [int(r["id"]) for r in rows]
        for row in await sql.fetch(
                conn, "SELECT customer_id, address FROM identity WHERE customer_id IN "
                f"({sql.placeholders(len(ids))}) ORDER BY id", ids):
            addresses.setdefault(int(row["customer_id"]), []).append(str(row["address"]))
    customers = [CustomerHit(int(r["id"]), r["name"], addresses.get(int(r["id"]), []),
                             _int(r["thread_id"])) for r in rows]
    messages: list[MessageHit] = []
    if query:
        text_match = ("to_tsvector('simple', m.text) @@ to_tsquery('simple', ?)" if postgres
                      else "m.id IN (SELECT rowid FROM message_fts WHERE message_fts MATCH ?)")
        rows = await sql.fetch(
            conn, "SELECT m.id, m.customer_id, m.channel, m.direction, m.text, m.created_at, "
            "c.name, t.thread_id FROM message m JOIN customer c ON c.id = m.customer_id "
            "LEFT JOIN customer_topic t ON t.customer_id = c.id AND t.chat_id = ? "
            f"WHERE {text_match} AND m.direction IN ('in', 'out', 'note') "
            "AND c.erased_at IS NULL ORDER BY m.id DESC LIMIT ?", [topics_in, query, limit])
        messages = [MessageHit(int(r["id"]), int(r["customer_id"]), r["name"],
                               Channel(r["channel"]), Direction(r["direction"]),
                               snippet(str(r["text"]), found), sql.as_datetime(r["created_at"]),
                               _int(r["thread_id"])) for r in rows]
    return SearchResult(customers, messages)


def _int(value: object) -> int | None:
    return int(value) if value is not None else None  # type: ignore[call-overload]
