"""Outbox lanes: live, notify and bulk share one channel's rate, served strictly in that order.

`Lane` maps the outbox `priority` values (crm/types.py Priority) to lanes. `TokenBucket` and
`LaneQueue` are the pure arithmetic (handed `now`, monotonic seconds) of who gets the channel's
next token: waiters strictly by lane, first come first served within a lane. `LaneLimiter` is
the thin asyncio shell the dispatcher awaits.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from crm.types import Priority

# `outbox.priority` is a SMALLINT: the lanes' ranges are its whole span, cut at the lane marks.
_SMALLINT = (-32768, 32767)
_EPSILON = 1e-9  # float drift must not make a token that is there look missing


class Lane(IntEnum):
    """A lane of the outbox; a lower value is served first."""

    LIVE = 0  # a manager's reply, a bot answer: priority < NOTIFY
    NOTIFY = 1  # mirrors and notices to managers: NOTIFY <= priority < BULK
    BULK = 2  # campaigns and follow-ups: priority >= BULK

    @classmethod
    def of(cls, priority: int) -> Lane:
        if priority < Priority.NOTIFY:
            return cls.LIVE
        return cls.NOTIFY if priority < Priority.BULK else cls.BULK

    @property
    def priorities(self) -> tuple[int, int]:
        """The outbox priorities of this lane, both ends included."""
        if self is Lane.LIVE:
            return _SMALLINT[0], Priority.NOTIFY - 1
        if self is Lane.NOTIFY:
            return Priority.NOTIFY, Priority.BULK - 1
        return Priority.BULK, _SMALLINT[1]


class TokenBucket:
    """`rate` tokens a second, at most `burst` kept; a pause grants nothing until it ends."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._stamp = now
        self.paused_until = -math.inf

    def _refill(self, now: float) -> None:
        start = max(self._stamp, self.paused_until)  # nothing accrues during a pause
        if now > start:
            self.tokens = min(self.burst, self.tokens + (now - start) * self.rate)
        self._stamp = max(self._stamp, now)

    def ready_in(self, n: float, now: float) -> float:
        """Seconds until `n` tokens can be taken (0: now)."""
        self._refill(now)
        start = max(now, self.paused_until)
        missing = n - self.tokens
        return (start - now) + (missing / self.rate if missing > _EPSILON else 0.0)

    def take(self, n: float, now: float) -> bool:
        if self.ready_in(n, now) > 0:
            return False
        self.tokens = max(0.0, self.tokens - n)
        return True

    def take_up_to(self, n: int, now: float) -> int:
        """Take as many whole tokens as are there, at most `n`, without waiting."""
        if n <= 0 or now < self.paused_until:
            return 0
        self._refill(now)
        got = min(n, math.floor(self.tokens + _EPSILON))
        self.tokens = max(0.0, self.tokens - got)
        return got

    def give_back(self, n: float) -> None:
        self.tokens = min(self.burst, self.tokens + n)

    def pause(self, until: float, now: float) -> None:
        """The channel said we sent too much (a flood wait): nothing until `until`, then the
        bucket starts again from empty."""
        self._refill(now)
        self.tokens = 0.0
        self.paused_until = max(self.paused_until, until)


@dataclass(eq=False)
class Ticket:
    """One waiter's place in the queue."""

    lane: Lane
    n: int
    seq: int
    granted: bool = False
    gone: bool = False  # left the queue, or its tokens were given back


class LaneQueue:
    """Who gets the bucket's tokens: the head waiter of the best lane, FIFO within a lane.

    Strict: a waiter is served only when every waiter ahead of it was, so a bulk batch waiting
    for its tokens never lets a later bulk row past, and a live waiter is always ahead of both.
    """

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket
        self._heap: list[tuple[int, int, Ticket]] = []
        self._seq = itertools.count()
        self._waiting: Counter[Lane] = Counter()

    def join(self, lane: Lane, n: int = 1) -> Ticket:
        if not 1 <= n <= self.bucket.burst:
            raise ValueError(f"a waiter may ask for 1..{self.bucket.burst:g} tokens, not {n}")
        ticket = Ticket(lane, n, next(self._seq))
        heapq.heappush(self._heap, (int(lane), ticket.seq, ticket))
        self._waiting[lane] += 1
        return ticket

    def leave(self, ticket: Ticket) -> None:
        """The waiter gave up: out of the queue; tokens it was already granted go back."""
        if ticket.gone:
            return
        ticket.gone = True
        if ticket.granted:
            self.bucket.give_back(ticket.n)
        else:
            self._waiting[ticket.lane] -= 1

    def grant(self, now: float) -> list[Ticket]:
        """The waiters whose tokens were taken now, in the order they were served."""
        served: list[Ticket] = []
        while self._heap:
            ticket = self._heap[0][2]
            if ticket.gone:
                heapq.heappop(self._heap)
                continue
            if not self.bucket.take(ticket.n, now):
                break
            heapq.heappop(self._heap)
            ticket.granted = True
            self._waiting[ticket.lane] -= 1
            served.append(ticket)
        return served

    def next_in(self, now: float) -> float | None:
        """Seconds until the head waiter can be served; None when nobody waits."""
        while self._heap and self._heap[0][2].gone:
            heapq.heappop(self._heap)
        if not self._heap:
            return None
        return self.bucket.ready_in(self._heap[0][2].n, now)

    def try_take(self, lane: Lane, n: int, now: float) -> int:
        """Up to `n` tokens at once, but only if nobody of this lane or a better one waits."""
        if any(self._waiting[w] > 0 for w in Lane if w <= lane):
            return 0
        return self.bucket.take_up_to(n, now)

    def waiting(self, lane: Lane) -> int:
        return self._waiting[lane]


class LaneLimiter:
    """A channel's rate for its lanes, for the dispatcher to await.

    Cancellation-safe: a waiter cancelled after it was granted (but before it resumed) gives its
    tokens back, so a stopped send never costs the channel a slot.
    """

    def __init__(self, rate: float, burst: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._queue = LaneQueue(TokenBucket(rate, burst, clock()))
        self._futures: dict[Ticket, asyncio.Future[None]] = {}
        self._timer: asyncio.TimerHandle | None = None

    @property
    def burst(self) -> float:
        return self._queue.bucket.burst

    async def acquire(self, lane: Lane, n: int = 1) -> None:
        ticket = self._queue.join(lane, n)
        future = asyncio.get_running_loop().create_future()
        self._futures[ticket] = future
        self.wake()
        try:
            await future
        except BaseException:
            self._futures.pop(ticket, None)
            self._queue.leave(ticket)
            self.wake()  # the head may have changed, or tokens came back
            raise

    def try_acquire(self, lane: Lane, n: int) -> int:
        """Take up to `n` tokens that are there now, if nobody as urgent waits; never waits."""
        return self._queue.try_take(lane, n, self._clock())

    def refund(self, n: int) -> None:
        """Tokens taken but not used (fewer rows were claimable than tokens held)."""
        if n > 0:
            self._queue.bucket.give_back(n)
            self.wake()

    def pause(self, seconds: float) -> None:
        now = self._clock()
        self._queue.bucket.pause(now + seconds, now)
        self.wake()

    def waiting(self, lane: Lane) -> int:
        return self._queue.waiting(lane)

    def wake(self) -> None:
        """Serve whoever can be served now, and set the timer for the next one. The limiter
        calls it itself; a test that moves an injected clock calls it to be seen at once."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self._clock()
        while served := self._queue.grant(now):
            for ticket in served:
                future = self._futures.pop(ticket, None)
                if future is None or future.done():  # cancelled before it could be served
                    self._queue.leave(ticket)
                else:
                    future.set_result(None)
        delay = self._queue.next_in(now)
        if delay is not None:
            self._timer = asyncio.get_running_loop().call_later(delay, self.wake)
