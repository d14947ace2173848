"""What the importers share: a report, ids reserved in bulk, a customer cache, the batch loop.

Rows are written a batch at a time (one transaction, a few statements per batch: `executemany`,
not a statement per row), so a file of any size streams through in constant memory and a
failure loses at most the batch under way. A dry run writes each batch exactly as a real run
would, then rolls it back: the same checks, the same answers, nothing stored. Ids of new rows
are reserved ahead (PostgreSQL's sequence; on SQLite, past the highest, under the write lock of
the batch's transaction); a dry run numbers them below zero instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sql
from crm.imports.reader import BadRow
from crm.types import Channel

Progress = Callable[[int], object]
Address = tuple[Channel, str]
MAX_KEPT = 1000  # bad rows kept for the report; all are counted


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    customers_created: int = 0
    bad: list[BadRow] = field(default_factory=list)
    bad_count: int = 0
    dry_run: bool = False

    def add_bad(self, bad: BadRow) -> None:
        self.bad_count += 1
        if len(self.bad) < MAX_KEPT:
            self.bad.append(bad)

    @property
    def good(self) -> int:
        return self.created + self.updated + self.unchanged


class DryRun(Exception):
    """Raised at the end of a dry run's batch: its transaction rolls back."""


class Ids:
    """New ids for a table: reserved from the database, or (dry run) counted below zero."""

    def __init__(self, table: str, dry_run: bool) -> None:
        self.table = table
        self._virtual = itertools.count(-1, -1) if dry_run else None

    async def take(self, conn: BaseDBAsyncClient, n: int) -> Iterator[int]:
        """`n` new ids, in ascending order (a real run's), to take with next()."""
        return iter(await self.reserve(conn, n))

    async def reserve(self, conn: BaseDBAsyncClient, n: int) -> list[int]:
        if n <= 0:
            return []
        if self._virtual is not None:
            return [next(self._virtual) for _ in range(n)]
        if sql.is_postgres(conn):
            rows = await sql.fetch(conn, "SELECT nextval(pg_get_serial_sequence(?, 'id')) AS id "
                                         "FROM generate_series(1, ?)", [self.table, n])
            return [int(r["id"]) for r in rows]
        rows = await sql.fetch(
            conn, "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), "
                  f"COALESCE((SELECT MAX(id) FROM {self.table}), 0)) AS top", [self.table])
        top = int(rows[0]["top"] or 0)
        return list(range(top + 1, top + 1 + n))


class Owners:
    """Which customer each address leads to, remembered for the whole import."""

    def __init__(self) -> None:
        self.known: dict[Address, int] = {}

    async def load(self, conn: BaseDBAsyncClient, addresses: Iterable[Address]) -> None:
        wanted = {a for a in addresses if a not in self.known}
        by_address: dict[str, set[Channel]] = {}
        for channel, address in wanted:
            by_address.setdefault(address, set()).add(channel)
        values = list(by_address)
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            for row in await sql.fetch(
                    conn, "SELECT channel, address, customer_id FROM identity WHERE address IN "
                          f"({sql.placeholders(len(chunk))})", chunk):
                key = (Channel(row["channel"]), row["address"])
                if key in wanted:
                    self.known[key] = int(row["customer_id"])

    def owners(self, addresses: Sequence[Address]) -> list[int]:
        return sorted({self.known[a] for a in addresses if a in self.known})


async def insert_customers(conn: BaseDBAsyncClient, rows: list[list[object]],
                           identities: list[list[object]], actor: str) -> None:
    """New customers (id, name, created_at) with their identities (customer_id, channel,
    address, created_at), each creation audited."""
    if rows:
        await conn.execute_many(sql.dialect_sql(
            conn, "INSERT INTO customer (id, name, tags, attributes, created_at) "
                  "VALUES (?, ?, '[]', '{}', ?)"), rows)
        await conn.execute_many(sql.dialect_sql(
            conn, "INSERT INTO audit_log (actor, action, customer_id, detail, created_at) "
                  "VALUES (?, 'customer.created', ?, '{\"source\":\"import\"}', ?)"),
            [[actor[:200], r[0], r[2]] for r in rows])
    if identities:
        await conn.execute_many(sql.dialect_sql(
            conn, "INSERT INTO identity (customer_id, channel, address, created_at) "
                  "VALUES (?, ?, ?, ?)"), identities)
