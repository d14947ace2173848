"""Search: customers by name or address, messages by text, for `/find`, `crm customers find`
and (later) the web console.

Case does not matter, in any script (SQLite's own LOWER() and LIKE fold ASCII only: we give
it `crm_fold`, Python's casefold). Customers: any part of their name or of an address.
Messages: every word of the query. On PostgreSQL a message matches when it has words that
begin with each of the query's words, through the GIN index of migration 0006 (`to_tsvector(
'simple', text)`: the full-text search the web console will build on); on SQLite, the embedded
default for one machine, when it contains each word anywhere (a scan). So "parc" finds
"parcel" on both. Erased customers are not found; a merged one is found as the customer it
was merged into.
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


def tsquery(found: list[str]) -> str:
    """Every word as a prefix; the words are \\w only, so nothing in them is syntax."""
    return " & ".join(f"{w}:*" for w in found)


def like(text: str) -> str:
    return "%" + text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace(
        "_", "\\_") + "%"


def folded(conn: BaseDBAsyncClient, text: str) -> tuple[str, str]:
    """The function that folds a column's case, and the LIKE pattern for "contains `text`",
    on this database (SQLite's: `crm_fold`, given to the connection by `with_fold`)."""
    if sql.is_postgres(conn):
        return "LOWER", "%" + text.lower().replace("\\", "\\\\").replace(
            "%", "\\%").replace("_", "\\_") + "%"
    return "crm_fold", like(text)


def _fold(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


async def with_fold(conn: BaseDBAsyncClient) -> None:
    """Give SQLite `crm_fold` on the connection at hand (registering again is harmless);
    crm/queries.py's customer filter `q` uses it too."""
    await conn.execute_query("SELECT 1")  # the connection exists from here on
    raw = getattr(conn, "_connection", None)
    if raw is not None:
        await raw.create_function("crm_fold", 1, _fold, deterministic=True)


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
    if not postgres:
        await with_fold(conn)
    fold = "LOWER" if postgres else "crm_fold"
    name = "c.name ILIKE ?" if postgres else "crm_fold(c.name) LIKE ? ESCAPE '\\'"
    rows = await sql.fetch(
        conn, "SELECT c.id, c.name, t.thread_id FROM customer c LEFT JOIN customer_topic t "
        "ON t.customer_id = c.id AND t.chat_id = ? WHERE c.merged_into_id IS NULL AND "
        f"c.erased_at IS NULL AND ({name} OR EXISTS (SELECT 1 FROM identity i "
        f"WHERE i.customer_id = c.id AND {fold}(i.address) LIKE ? ESCAPE '\\')) "
        "ORDER BY c.last_seen_at DESC NULLS LAST, c.id DESC LIMIT ?",
        [topics_in, like(needle), like(needle), limit])
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
    if found:
        if postgres:
            match, params = "to_tsvector('simple', m.text) @@ to_tsquery('simple', ?)", \
                [tsquery(found)]
        else:
            match = " AND ".join(["crm_fold(m.text) LIKE ? ESCAPE '\\'"] * len(found))
            params = [like(w) for w in found]
        rows = await sql.fetch(
            conn, "SELECT m.id, m.customer_id, m.channel, m.direction, m.text, m.created_at, "
            "c.name, t.thread_id FROM message m JOIN customer c ON c.id = m.customer_id "
            "LEFT JOIN customer_topic t ON t.customer_id = c.id AND t.chat_id = ? "
            f"WHERE {match} AND m.direction IN ('in', 'out', 'note') "
            "AND c.erased_at IS NULL ORDER BY m.id DESC LIMIT ?", [topics_in, *params, limit])
        messages = [MessageHit(int(r["id"]), int(r["customer_id"]), r["name"],
                               Channel(r["channel"]), Direction(r["direction"]),
                               snippet(str(r["text"]), found), sql.as_datetime(r["created_at"]),
                               _int(r["thread_id"])) for r in rows]
    return SearchResult(customers, messages)


def _int(value: object) -> int | None:
    return int(value) if value is not None else None  # type: ignore[call-overload]
