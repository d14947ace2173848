"""Singletons across processes: on PostgreSQL, the process holding an advisory lock.

Used for the scheduler's timers, the IMAP reader and each channel's outbox lanes
(crm/dispatcher.py); one lock id each (`lock_id_for`).

The lock lives on a dedicated connection (not the ORM's pool), taken with
`pg_try_advisory_lock`; PostgreSQL releases it when that connection ends, so when the leader
dies another process takes over at its next try. SQLite runs one process: it always leads.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
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
    def __init__(self, db_url: str, lock_id: int, name: str = "scheduler") -> None:
        self.single = db_url.startswith("sqlite:")
        self._dsn = "" if self.single else asyncpg_dsn(db_url)
        self.lock_id = lock_id
        self.name = name  # for the logs
        self._conn: asyncpg.Connection | None = None
        self.leading = self.single
        # Times this process took the lock: a new term is a new connection (its listeners are
        # gone) and another process may have led in between.
        self.terms = 1 if self.single else 0
        self._use = asyncio.Lock()  # one statement at a time on the connection

    async def ensure(self) -> bool:
        """True if this process leads (now or after taking the free lock)."""
        if self.single:
            return True
        async with self._use:
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
                self.terms += 1
                log.info("leader.leading", singleton=self.name, lock_id=self.lock_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            if self.leading:
                log.warning("leader.lost", singleton=self.name, error=str(e))
            self.leading = False
            self.terminate()
        return self.leading

    async def listen(self, channel: str, heard: Callable[[str], None]) -> bool:
        """While leading: `heard(payload)` for each NOTIFY on `channel` (PostgreSQL), on the
        lock's own connection, so the listening ends with the lock."""
        if self.single:
            return False
        async with self._use:
            if not self.leading or self._conn is None or self._conn.is_closed():
                return False
            try:
                await self._conn.add_listener(
                    channel, lambda _conn, _pid, _channel, payload: heard(payload))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("leader.listen_failed", singleton=self.name, error=str(e))
                return False
            return True

    async def notify(self, channel: str, payload: str) -> bool:
        """Tell whoever leads (and listens on `channel`); False when it could not be said."""
        if self.single:
            return False
        async with self._use:
            if self._conn is None or self._conn.is_closed():
                return False
            try:
                await self._conn.execute("SELECT pg_notify($1, $2)", channel, payload)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("leader.notify_failed", singleton=self.name, error=str(e))
                return False
            return True

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
