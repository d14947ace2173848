"""Singletons across processes: on PostgreSQL, the process holding an advisory lock.

Used for the scheduler's timers and the IMAP reader; one lock id each (`lock_id_for`).

The lock lives on a dedicated connection (not the ORM's pool), taken with
`pg_try_advisory_lock`; PostgreSQL releases it when that connection ends, so when the leader
dies another process takes over at its next try. SQLite runs one process: it always leads.
"""

from __future__ import annotations

import asyncio
import hashlib
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

log = structlog.get_logger(__name__)


def lock_id_for(name: str) -> int:
    """A stable advisory-lock id for a named singleton (e.g. one mailbox's reader)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") & 0x7FFFFFFF


def asyncpg_dsn(url: str) -> str:
    """A Tortoise URL (postgres://…?maxsize=5) as an asyncpg DSN (without Tortoise's options)."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))


class Leadership:
    def __init__(self, db_url: str, lock_id: int) -> None:
        self.single = db_url.startswith("sqlite:")
        self._dsn = "" if self.single else asyncpg_dsn(db_url)
        self.lock_id = lock_id
        self._conn: asyncpg.Connection | None = None
        self.leading = self.single
        # Jobs that start together (the tasks' and the campaigns' ticks) ask at once: one
        # connection, one question at a time (asyncpg runs one operation per connection).
        self._asking: asyncio.Lock | None = None

    async def ensure(self) -> bool:
        """True if this process leads (now or after taking the free lock)."""
        if self.single:
            return True
        if self._asking is None:
            self._asking = asyncio.Lock()
        async with self._asking:
            return await self._ensure()

    async def _ensure(self) -> bool:
        try:
            if self._conn is None or self._conn.is_closed():
                self.leading = False
                self._conn = await asyncpg.connect(self._dsn, timeout=10)
            if self.leading:
                await self._conn.fetchval("SELECT 1")  # the lock lives as long as this
                return True
            self.leading = bool(await self._conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", self.lock_id))
            if self.leading:
                log.info("scheduler.leading", lock_id=self.lock_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            if self.leading:
                log.warning("scheduler.lost_leadership", error=str(e))
            self.leading = False
            self.terminate()
        return self.leading

    def terminate(self) -> None:
        """Drop the connection at once (and with it the lock); safe to call twice."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()
        if not self.single:
            self.leading = False

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close()
        if not self.single:
            self.leading = False
