"""Short SQLite reads on the event loop's own thread: the API's lists and cards.

Tortoise runs every SQLite statement on aiosqlite's worker thread. For a read of one page that
costs more than the read itself: a future, a queue, a wake-up of the thread and the GIL handed
over and back. With 20 clients in flight on a 2-core machine that came to about 0.2 ms of CPU a
call, a quarter of a customer card. So `crm.sql.rows` runs a SELECT here, on a second
connection of our own, opened in the loop's thread and kept read-only (`query_only`).

Why that sees what the worker's connection would: in WAL mode (Tortoise's default) a reader never
waits for the writer, and each statement sees every transaction committed before it began. Two
cases stay on Tortoise's connection: a read inside a transaction (it must see that
transaction's own writes), and a database that is not a WAL file (`:memory:` is private to its
connection; with a rollback journal readers wait for writers).

The loop waits for a read here, so a read may only be short: one that runs past a budget of
SQLite steps (a filter that scans the table, a text search; a page or a card takes about a
twentieth of it) is interrupted and runs again on the worker's thread. So does a read that fails
here for any other reason (a database another process is recovering, …): there it raises the
error as Tortoise translates it.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Sequence
from functools import cache
from typing import Any, cast

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.backends.sqlite.client import SqliteClient

_STEPS = 1_000  # SQLite calls the budget's handler every this many virtual machine steps
_BUDGET = 20  # and a read here stops after this many calls: ~20,000 steps, about 1-2 ms


class _Reader:
    """A read-only connection and its budget for the read under way."""

    __slots__ = ("beside", "conn", "left")

    def __init__(self, conn: sqlite3.Connection, beside: object) -> None:
        self.conn = conn
        self.left = 0
        self.beside = beside  # the worker's connection this one was opened next to
        conn.set_progress_handler(self._spend, _STEPS)

    def _spend(self) -> int:
        self.left -= 1
        return int(self.left < 0)  # non-zero: SQLite interrupts the statement

    def rows(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        self.left = _BUDGET
        return self.conn.execute(sql, params).fetchall()


# Per Tortoise client: our reader, or None where reads stay on the worker's connection.
_readers: weakref.WeakKeyDictionary[BaseDBAsyncClient, _Reader | None] = (
    weakref.WeakKeyDictionary())


def read(conn: BaseDBAsyncClient, sql: str,
         params: Sequence[Any]) -> Sequence[sqlite3.Row] | None:
    """The rows of `sql`, read here; None when this read must go through Tortoise."""
    if not _readable(conn.__class__):
        return None
    conn = cast(SqliteClient, conn)
    worker = conn._connection
    if worker is None:  # closed, or not yet connected: Tortoise (re)connects
        return None
    if conn not in _readers:
        reader = _readers[conn] = _open(conn.filename, worker)
    else:
        reader = _readers[conn]
        if reader is not None and reader.beside is not worker:  # Tortoise reconnected
            reader.conn.close()
            reader = _readers[conn] = _open(conn.filename, worker)
    if reader is None:
        return None
    try:
        return reader.rows(sql, params)
    except sqlite3.Error:  # over budget, locked, another thread's loop: the usual way
        return None


@cache
def _readable(kind: type) -> bool:
    """SQLite, outside a transaction (TransactionalDBClient is an ABC: isinstance is slow)."""
    return issubclass(kind, SqliteClient) and not issubclass(kind, TransactionalDBClient)


def close_all() -> None:
    """Close every reader (the database is being closed)."""
    for reader in list(_readers.values()):
        if reader is not None:
            reader.conn.close()
    _readers.clear()


def _open(filename: str, worker: object) -> _Reader | None:
    if not filename or filename == ":memory:" or filename.startswith("file:"):
        return None
    # No busy wait: this runs on the loop's thread, and a busy database (a WAL being recovered,
    # a checkpoint that must reset it) would hold every request for sqlite3's default 5 s.
    # Busy, the read goes to the worker's connection, which may wait.
    conn = sqlite3.connect(filename, isolation_level=None, timeout=0)
    try:
        conn.execute("PRAGMA query_only = ON")
        mode = conn.execute("PRAGMA journal_mode").fetchone()
    except sqlite3.Error:
        conn.close()
        return None
    if mode is None or str(mode[0]).lower() != "wal":
        conn.close()
        return None
    conn.row_factory = sqlite3.Row
    return _Reader(conn, worker)
