"""Plain SQL for the few hot paths where the ORM's query building costs more than the query.

Statements are written once with `?` placeholders; PostgreSQL gets `$1, $2, …`. Datetimes go in
as aware datetime objects (Tortoise registers the SQLite adapter that stores them as the ORM does)
and come back through `as_datetime`, since SQLite returns text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sqlite_reads


def is_postgres(conn: BaseDBAsyncClient) -> bool:
    return bool(conn.capabilities.dialect == "postgres")


@cache
def _numbered(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _m: f"${next(counter)}", sql)


def dialect_sql(conn: BaseDBAsyncClient, sql: str) -> str:
    return _numbered(sql) if is_postgres(conn) else sql


async def fetch(conn: BaseDBAsyncClient, sql: str,
                params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    if is_postgres(conn):  # (an UPDATE … RETURNING needs the dict call on asyncpg)
        return list(await conn.execute_query_dict(_numbered(sql), list(params)))
    # sqlite3.Row looks a name up by comparing it with each column's: zip the names once.
    _count, found = await conn.execute_query(sql, list(params))
    return _dicts(found)


async def rows(conn: BaseDBAsyncClient, sql: str,
               params: Sequence[Any] = ()) -> Sequence[Sequence[Any]]:
    """The rows of a short SELECT (a page, a card), by position and by name (sqlite3.Row,
    asyncpg's Record): the hot lists know their columns' order and need no dict per row. On
    SQLite the read runs in the loop's thread when it can (crm/sqlite_reads.py)."""
    if not is_postgres(conn):
        found = sqlite_reads.read(conn, sql, params)
        if found is not None:
            return found
    _count, result = await conn.execute_query(dialect_sql(conn, sql), list(params))
    return cast(Sequence[Sequence[Any]], result)  # typed as dicts by Tortoise; they are rows


async def read(conn: BaseDBAsyncClient, sql: str,
               params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """`rows` as dicts, for a short SELECT read by column name."""
    return _dicts(await rows(conn, sql, params))


def _dicts(found: Sequence[Any]) -> list[dict[str, Any]]:
    if not found:
        return []
    names = tuple(found[0].keys())
    if len(set(names)) < len(names):  # a name twice: by name, the first column wins
        return [dict(row) for row in found]
    return [dict(zip(names, row, strict=True)) for row in found]


async def execute(conn: BaseDBAsyncClient, sql: str, params: Sequence[Any] = ()) -> int:
    count, _ = await conn.execute_query(dialect_sql(conn, sql), list(params))
    return int(count or 0)


_fromisoformat = datetime.fromisoformat


def as_datetime(value: object) -> datetime | None:
    if value.__class__ is str:  # SQLite's text, the common case in lists: first
        return _fromisoformat(value)
    if value is None or isinstance(value, datetime):
        return value
    return _fromisoformat(str(value))


def limit(n: int) -> str:
    """`LIMIT n` written into a page's statement rather than passed as a parameter: with a
    parameter there, PostgreSQL's generic plan must guess the limit (a tenth of the table), so
    it plans every call afresh (~0.15 ms of its CPU each). Page sizes are few; `n` is an int."""
    return f"LIMIT {int(n)}"


def placeholders(n: int) -> str:
    return ", ".join("?" * n)
