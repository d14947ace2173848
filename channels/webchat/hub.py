"""The visitors' open event streams in this process, and what reaches each of them.

One reader takes the committed events of the live feed (crm/live.py: this process's and, on
PostgreSQL, every other's) and hands each to the streams of the customer it is about: a lookup
in a dict, whatever the number of streams, so a thousand idle visitors cost nothing per event.
Each stream then decides, with one read of the message, whether it is one for its visitor.
A visitor who has not written yet is no customer: their streams wait under their visitor id
until their first message binds them (`bind`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from crm.live import LiveEvent, LiveFeed

log = structlog.get_logger(__name__)

FEED_SIZE = 10_000  # events the reader may fall behind by before it loses the oldest
STREAM_SIZE = 256
K = TypeVar("K", int, str)


@dataclass(eq=False)
class Stream:
    visitor: str
    remote: str
    customer_id: int | None = None
    identity_id: int | None = None
    queue: asyncio.Queue[LiveEvent] = field(
        default_factory=lambda: asyncio.Queue(STREAM_SIZE))

    def put(self, event: LiveEvent) -> None:
        if self.queue.full():  # a stalled page loses its oldest; its next "ready" catches up
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(event)


class Hub:
    def __init__(self, feed: LiveFeed) -> None:
        self.feed = feed
        self._by_customer: dict[int, set[Stream]] = defaultdict(set)
        self._by_visitor: dict[str, set[Stream]] = defaultdict(set)
        self._by_remote: dict[str, int] = defaultdict(int)
        self._queue: asyncio.Queue[LiveEvent] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = self.feed.subscribe(FEED_SIZE)
        self._task = asyncio.create_task(self._route(), name="webchat-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._queue is not None:
            self.feed.unsubscribe(self._queue)
            self._queue = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def count(self, visitor: str) -> int:
        return len(self._by_visitor.get(visitor, ()))

    def count_remote(self, remote: str) -> int:
        return self._by_remote.get(remote, 0)

    @property
    def streams(self) -> int:
        return sum(len(s) for s in self._by_visitor.values())

    def open(self, visitor: str, remote: str, customer_id: int | None,
             identity_id: int | None) -> Stream:
        stream = Stream(visitor, remote, customer_id, identity_id)
        self._by_visitor[visitor].add(stream)
        self._by_remote[remote] += 1
        if customer_id is not None:
            self._by_customer[customer_id].add(stream)
        return stream

    def close(self, stream: Stream) -> None:
        _discard(self._by_visitor, stream.visitor, stream)
        if stream.customer_id is not None:
            _discard(self._by_customer, stream.customer_id, stream)
        self._by_remote[stream.remote] -= 1
        if self._by_remote[stream.remote] <= 0:
            del self._by_remote[stream.remote]

    def bind(self, visitor: str, customer_id: int, identity_id: int | None) -> None:
        """The visitor is this customer now (their first message, a merge): their open
        streams hear about that customer from here on."""
        for stream in self._by_visitor.get(visitor, ()):
            if stream.customer_id == customer_id and stream.identity_id == identity_id:
                continue
            if stream.customer_id is not None:
                _discard(self._by_customer, stream.customer_id, stream)
            stream.customer_id, stream.identity_id = customer_id, identity_id
            self._by_customer[customer_id].add(stream)

    async def _route(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            for stream in tuple(self._by_customer.get(event.customer_id, ())):
                stream.put(event)


def _discard(index: dict[K, set[Stream]], key: K, stream: Stream) -> None:
    streams = index.get(key)
    if streams is not None:
        streams.discard(stream)
        if not streams:
            del index[key]
