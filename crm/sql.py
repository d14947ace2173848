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
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient


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
    return list(await conn.execute_query_dict(dialect_sql(conn, sql), list(params)))


async def execute(conn: BaseDBAsyncClient, sql: str, params: Sequence[Any] = ()) -> int:
    count, _ = await conn.execute_query(dialect_sql(conn, sql), list(params))
    return int(count or 0)


def as_datetime(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def placeholders(n: int) -> str:
    return ", ".join("?" * n)
