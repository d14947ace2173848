"""Live updates for screens that stay open (the web console, web chat visitors): the core's
events, as they commit, to every listener, in this process and, on PostgreSQL, in every other
process on the database.

The feed listens to the same bus events the managers' chat does (after the commit, so a screen
never shows what was rolled back). On PostgreSQL each event is also sent with NOTIFY on the
channel `crm_live`, and a dedicated connection (not the ORM's pool: LISTEN needs one connection
that stays) LISTENs for the others' events; an event carries the id of the process that made it,
so a process does not hear its own twice. SQLite is one process: local delivery is all there is.

A listener is a bounded queue: one that falls behind loses its oldest events, never blocks the
core. The web console treats an event as "look again", so a lost one costs nothing visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import structlog

from crm.events import (
    ConversationChanged,
    DeliveryChanged,
    EventBus,
    MessageEdited,
    MessageQueued,
    MessageReceived,
)
from crm.leader import asyncpg_dsn

log = structlog.get_logger(__name__)

CHANNEL = "crm_live"
QUEUE_SIZE = 256
_RETRY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """What changed, enough for a screen to know what to look at again."""

    kind: str  # message, delivery, conversation, edited
    customer_id: int
    conversation_id: int | None = None
    message_id: int | None = None
    status: str | None = None
    at: float = 0.0  # epoch seconds when it was committed (for latency measurements)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LiveEvent:
        return cls(kind=str(data["kind"]), customer_id=int(data["customer_id"]),
                   conversation_id=_int(data.get("conversation_id")),
                   message_id=_int(data.get("message_id")),
                   status=data.get("status"), at=float(data.get("at") or 0.0))


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def of(event: object) -> LiveEvent | None:
    """The live event of a core event (None: nothing a screen shows)."""
    now = time.time()
    if isinstance(event, MessageReceived | MessageQueued):
        return LiveEvent("message", event.customer_id, event.conversation_id, event.message_id,
                         event.direction.value, now)
    if isinstance(event, DeliveryChanged):
        if event.customer_id is None:
            return None
        return LiveEvent("delivery", event.customer_id, None, event.message_id,
                         event.status.value, now)
    if isinstance(event, ConversationChanged):
        return LiveEvent("conversation", event.customer_id, event.conversation_id, None,
                         event.status.value, now)
    if isinstance(event, MessageEdited):
        return LiveEvent("edited", event.customer_id, None, event.message_id, None, now)
    return None


class LiveFeed:
    def __init__(self, bus: EventBus, db_url: str) -> None:
        self.bus = bus
        self.origin = uuid.uuid4().hex[:12]
        self._dsn = "" if db_url.startswith("sqlite:") else asyncpg_dsn(db_url)
        self._queues: set[asyncio.Queue[LiveEvent]] = set()
        self._conn: asyncpg.Connection | None = None
        self._send = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while LISTEN is on (always, on SQLite)

    def install(self) -> None:
        for kind in (MessageReceived, MessageQueued, DeliveryChanged, ConversationChanged,
                     MessageEdited):
            self.bus.subscribe(kind, self._committed)

    async def start(self) -> None:
        if not self._dsn:
            self.listening.set()
            return
        self._task = asyncio.create_task(self._keep_listening(), name="crm-live-listen")
        with contextlib.suppress(TimeoutError):  # down now: it keeps trying in the background
            await asyncio.wait_for(self.listening.wait(), 10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close()

    def subscribe(self, size: int = QUEUE_SIZE) -> asyncio.Queue[LiveEvent]:
        """A queue of what commits from now on; `size`: how far it may fall behind (one
        that routes events on to many readers, the web chat's, wants more)."""
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue(size)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[LiveEvent]) -> None:
        self._queues.discard(queue)

    async def _committed(self, event: object) -> None:
        live = of(event)
        if live is None:
            return
        self._deliver(live)
        conn = self._conn
        if conn is None or conn.is_closed():
            return
        body = json.dumps({**asdict(live), "origin": self.origin}, separators=(",", ":"))
        try:
            async with self._send:  # one statement at a time on a connection
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, body)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            log.warning("live.notify_failed", error=str(e))

    def _deliver(self, event: LiveEvent) -> None:
        for queue in list(self._queues):
            if queue.full():  # a slow reader loses its oldest, never holds up the core
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            data = json.loads(payload)
            if data.get("origin") == self.origin:
                return  # ours: delivered when it committed
            self._deliver(LiveEvent.from_json(data))
        except (ValueError, KeyError, TypeError) as e:
            log.warning("live.bad_notification", error=str(e), payload=payload[:200])

    async def _keep_listening(self) -> None:
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn, timeout=10)
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._heard)
                self._conn = conn
                self.listening.set()
                log.info("live.listening", channel=CHANNEL)
                await lost.wait()
                log.warning("live.connection_lost")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("live.listen_failed", error=str(e))
            self.listening.clear()
            self._conn = None
            await asyncio.sleep(_RETRY_SECONDS)
