"""One channel's lanes at work: claiming, waiting for the channel's tokens, sending, recording.

Live and notify rows are claimed by one loop as soon as they are queued; each then waits for its
recipient's limiter and for a token at its lane's priority. The bulk loop takes a token first
and claims only as many rows as it holds tokens for. Each send runs in its own task and its
outcome is recorded at once (crm/dispatcher.py says what that guarantees).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from aiolimiter import AsyncLimiter

from crm import metrics
from crm.clock import now_ms
from crm.config import OutboxSettings
from crm.events import OutboxQueued
from crm.lanes import Lane, LaneLimiter
from crm.outbox import Claimed, OutboxService
from crm.ports import Sender
from crm.types import DeliveryResult, OutboxState, Outcome

log = structlog.get_logger(__name__)


def backoff_seconds(attempts: int, base: float, cap: float,
                    retry_after: float | None = None, rnd: random.Random | None = None) -> float:
    """Exponential backoff with jitter; a retry-after from the channel is obeyed, never cut."""
    jitter: float = (rnd or random).random()
    if retry_after is not None:
        return retry_after + jitter * 0.25
    exp = min(cap, base * (2 ** max(0, attempts - 1)))
    return float(exp * (0.5 + jitter / 2))


class _RecipientLimiters:
    """Per-recipient limiters, forgotten when idle so memory stays bounded."""

    def __init__(self, sender: Sender, size: int = 10_000) -> None:
        self._sender = sender
        self._size = size
        self._limiters: OrderedDict[str, AsyncLimiter] = OrderedDict()

    def get(self, address: str) -> AsyncLimiter | None:
        limiter = self._limiters.get(address)
        if limiter is not None:
            self._limiters.move_to_end(address)
            return limiter
        spec = self._sender.limits.per_recipient(address)
        if spec is None:
            return None
        limiter = AsyncLimiter(spec[0], spec[1])
        self._limiters[address] = limiter
        if len(self._limiters) > self._size:
            self._limiters.popitem(last=False)
        return limiter


class _Recorder:
    """Records the bulk lane's plain successes together: one transaction per batch (a few
    hundredths of a second's worth) instead of one per message. Each send still waits until
    its outcome is committed before its slot is free, so what the dispatcher guarantees holds;
    the window in which a crash can repeat a send grows by at most `delay`."""

    def __init__(self, outbox: OutboxService, delay: float = 0.02, size: int = 200) -> None:
        self.outbox = outbox
        self.delay = delay
        self.size = size
        self.pending: list[tuple[Claimed, DeliveryResult, asyncio.Future[None]]] = []
        self.full = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def record(self, row: Claimed, result: DeliveryResult) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((row, result, done))
        if len(self.pending) >= self.size:
            self.full.set()
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._flush_soon(), name="outbox-recorder")
        await done

    async def _flush_soon(self) -> None:
        while self.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.full.wait(), self.delay)
            self.full.clear()
            batch, self.pending = self.pending, []
            try:
                await self.outbox.record_sent([(row, result) for row, result, _ in batch])
            except Exception as e:
                for _row, _result, done in batch:  # each records its own, as before
                    if not done.done():
                        done.set_exception(e)
                continue
            for _row, _result, done in batch:
                if not done.done():
                    done.set_result(None)


class _Lane:
    """One lane of one channel: its budget of rows in flight, and whether it may have work."""

    def __init__(self, lane: Lane, budget: int, wake: asyncio.Event) -> None:
        self.lane = lane
        self.budget = budget
        self.in_flight: dict[int, asyncio.Task[None]] = {}
        # Rows this process sees through to the end (send and record, or give back), even
        # during shutdown; the other rows in flight are still waiting and can be returned.
        self.committed: set[int] = set()
        # Rows of this lane may be claimable now: one was queued, one of ours finished (the
        # next row to its recipient), or one fell due. A claim that comes back short clears it.
        self.wanted = True
        self.wake = wake

    @property
    def free(self) -> int:
        return self.budget - len(self.in_flight)

    def want(self) -> None:
        self.wanted = True
        self.wake.set()


class ChannelLanes:
    """The lanes of one channel at work, from one start of the dispatcher to its stop."""

    def __init__(self, sender: Sender, outbox: OutboxService, settings: OutboxSettings,
                 monotonic: Callable[[], float]) -> None:
        self.sender = sender
        self.channel = sender.channel
        self.outbox = outbox
        self.settings = settings
        self.monotonic = monotonic
        self.stopping = False
        self.wake = asyncio.Event()  # the claim loop of live and notify rows, and the poll
        budget = settings.max_in_flight
        self.lanes = {Lane.LIVE: _Lane(Lane.LIVE, budget, self.wake),
                      Lane.NOTIFY: _Lane(Lane.NOTIFY, budget, self.wake),
                      Lane.BULK: _Lane(Lane.BULK, budget, asyncio.Event())}
        self.recipients = _RecipientLimiters(sender)
        self.recorder = _Recorder(outbox)
        self.limiter = self._new_limiter()
        self.addresses: Counter[str] = Counter()  # recipients with a row in flight here
        self.blocked: dict[str, set[Lane]] = {}  # lanes with a row queued behind one of those
        self.tasks: list[asyncio.Task[None]] = []
        self.bulk_parked = False  # the bulk task waits for a token (safe to cancel there)
        # Bulk goes only when the urgent lanes have claimed what was queued for them (their rows
        # then wait in the limiter, ahead of bulk) and none holding a token is still starting:
        # so a live row queued before a bulk row is claimed is also sent before it. The first
        # round of claims is awaited too.
        self.urgent_queued = 1  # live and notify rows queued (events seen)
        self.urgent_claimed = 0  # of those, how many a finished claim round has seen
        self.starting = 0
        self.bulk_gate = asyncio.Event()

    def _new_limiter(self) -> LaneLimiter:
        # At most a tenth of a second's worth at once: strict gateways count per second, and a
        # full second's burst on top of the steady rate would exceed it.
        rate = max(0.01, self.sender.limits.per_second)
        return LaneLimiter(rate, max(1.0, rate / 10), clock=self.monotonic)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.run(), name=f"dispatch-{self.channel}"),
                      asyncio.create_task(self.run_bulk(), name=f"dispatch-{self.channel}-bulk")]

    def halt(self) -> None:
        """Stop claiming: the loops end after what they are doing; sends go on."""
        self.stopping = True
        for lane in self.lanes.values():
            lane.wake.set()
        self.bulk_gate.set()
        if self.bulk_parked:
            self.tasks[1].cancel()

    def _gate(self) -> None:
        settled = self.urgent_claimed == self.urgent_queued
        if self.stopping or (settled and not self.starting):
            self.bulk_gate.set()
        else:
            self.bulk_gate.clear()

    def queued(self, event: OutboxQueued) -> None:
        lane = self.lanes[Lane.of(event.priority)]
        if event.address and self.addresses[event.address]:
            # It waits behind a row in flight to the same recipient: look again when that ends.
            self.blocked.setdefault(event.address, set()).add(lane.lane)
        if lane.lane is not Lane.BULK:
            self.urgent_queued += 1
            self._gate()
        lane.want()

    async def run(self) -> None:
        """Claims live and notify rows as they come; polls for rows falling due in any lane."""
        urgent = (self.lanes[Lane.LIVE], self.lanes[Lane.NOTIFY])
        while not self.stopping:
            # Cleared before claiming, so a row queued during the claim wakes the next round.
            self.wake.clear()
            seen = self.urgent_queued
            more = False
            for lane in urgent:
                free = lane.free
                # Claim in batches: one claim per finished send would cost a query per row.
                if not lane.wanted or free <= 0 or (
                        lane.in_flight and free < max(1, lane.budget // 4)):
                    continue
                lane.wanted = False
                claimed = await self._claim(lane, free)
                self._spawn(lane, claimed, self._deliver)
                if claimed and len(claimed) == free:
                    lane.wanted = more = True  # there may be more right away
            if more:
                continue
            # The rows claimed above start (and join the limiter's queue) before bulk wakes.
            self.urgent_claimed = seen
            self._gate()
            due = await self._next_due()
            timeout = self.settings.poll_interval
            if due:
                timeout = min(timeout, max(0.0, min(due.values()) / 1000 - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=max(0.01, timeout))
            now = time.time() * 1000
            for name, at in due.items():
                if at <= now:
                    self.lanes[name].want()

    async def _next_due(self) -> dict[Lane, int]:
        """When the rows of the lanes that have run dry fall due (the busy ones need no poll)."""
        idle = [lane.lane for lane in self.lanes.values() if not lane.wanted]
        if not idle:
            return {}
        try:
            return await self.outbox.next_due_ms(self.channel, idle)
        except Exception:
            log.exception("outbox.next_due_failed", channel=self.channel.value)
            return {}

    async def run_bulk(self) -> None:
        """Takes the tokens live and notify leave over, then claims as many bulk rows."""
        lane = self.lanes[Lane.BULK]
        while not self.stopping:
            lane.wake.clear()
            if not lane.wanted or lane.free <= 0:
                await lane.wake.wait()
                continue
            await self.bulk_gate.wait()
            if self.stopping:
                break
            self.bulk_parked = True
            try:
                await self.limiter.acquire(Lane.BULK)
            finally:
                self.bulk_parked = False
            if self.stopping or not self.bulk_gate.is_set():
                self.limiter.refund(1)  # stopping, or an urgent row came meanwhile: it is its
                continue
            tokens = 1 + self.limiter.try_acquire(Lane.BULK, lane.free - 1)
            lane.wanted = False
            claimed = await self._claim(lane, tokens)
            self.limiter.refund(tokens - len(claimed))
            self._spawn(lane, claimed, self._send_bulk)
            if claimed and len(claimed) == tokens:
                lane.wanted = True  # there may be more right away
            else:
                self.wake.set()  # run dry: the poll looks after when its rows fall due

    async def _claim(self, lane: _Lane, limit: int) -> list[Claimed]:
        try:
            return await self.outbox.claim(self.channel, limit, self.settings.lease_seconds,
                                           lane=lane.lane)
        except Exception:
            log.exception("outbox.claim_failed", channel=self.channel.value,
                          lane=lane.lane.name.lower())
            return []

    def _spawn(self, lane: _Lane, rows: list[Claimed],
               deliver: Callable[[_Lane, Claimed], Coroutine[Any, Any, None]]) -> None:
        for row in rows:
            if row.id in lane.in_flight:
                # Its lease ran out while it waited here and it was claimed again: the task we
                # have will send it (start_send renews the lease); never a second one.
                continue
            task = asyncio.create_task(deliver(lane, row), name=f"send-{row.id}")
            lane.in_flight[row.id] = task
            self.addresses[row.address] += 1
            task.add_done_callback(functools.partial(self._done, lane, row))

    def _done(self, lane: _Lane, row: Claimed, task: asyncio.Task[None]) -> None:
        lane.in_flight.pop(row.id, None)
        lane.committed.discard(row.id)
        self.addresses[row.address] -= 1
        if self.addresses[row.address] <= 0:
            del self.addresses[row.address]
            for other in self.blocked.pop(row.address, ()):
                self.lanes[other].want()
        lane.want()  # a slot is free, and the recipient's next row may be claimable now
        for worse in Lane:
            if worse > lane.lane:  # its rows to this recipient waited behind this one
                self.lanes[worse].want()
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("outbox.delivery_crashed", channel=self.channel.value, outbox_id=row.id,
                      error=repr(error))

    async def _deliver(self, lane: _Lane, row: Claimed) -> None:
        """A live or notify row: wait for its recipient, then a token at the lane's priority."""
        limiter = self.recipients.get(row.address)
        if limiter is not None:
            await limiter.acquire()
        await self.limiter.acquire(lane.lane)
        self._starting(+1)
        handed_on = False
        try:
            # The lease counted from the claim; waiting in the limiters may have used it up.
            # Renew it now, and send only if the row is still ours (not re-queued, cancelled or
            # forgotten).
            if not await self.outbox.start_send(row.id, self.settings.lease_seconds):
                self.limiter.refund(1)
                log.warning("outbox.lease_lost", channel=self.channel.value, outbox_id=row.id)
                return
            lane.committed.add(row.id)
            handed_on = True
        finally:
            if not handed_on:
                self._starting(-1)
        # From here the send must finish and be recorded, even during shutdown.
        await asyncio.shield(self._send_and_record(row, started=lambda: self._starting(-1)))

    def _starting(self, change: int) -> None:
        self.starting += change
        self._gate()

    async def _send_bulk(self, lane: _Lane, row: Claimed) -> None:
        """A bulk row: it holds its token already and was claimed just now, so it goes at once
        (no lease to renew), or back to the queue if its recipient is not ready yet."""
        lane.committed.add(row.id)
        await asyncio.shield(self._send_bulk_now(row))

    async def _send_bulk_now(self, row: Claimed) -> None:
        limiter = self.recipients.get(row.address)
        if limiter is not None and not limiter.has_capacity():
            # Waiting here would hold the row claimed and its token idle (e.g. a follow-up right
            # after a reply to the same chat): both go back, the row due when the chat is ready.
            self.limiter.refund(1)
            later = now_ms() + int(1000 * limiter.time_period / limiter.max_rate)
            await self.outbox.release([row.id], due_ms=later)
            return
        if limiter is not None:
            await limiter.acquire()  # it has capacity: this does not wait
        await self._send_and_record(row, batched=True)

    async def _send_and_record(self, row: Claimed,
                               started: Callable[[], None] | None = None,
                               batched: bool = False) -> None:
        outbox_settings = self.settings
        try:
            if started is not None:
                started()
            result = await self.sender.send(row.to_message())
        except Exception as e:
            log.exception("outbox.sender_crashed", channel=self.channel.value, outbox_id=row.id)
            result = DeliveryResult.retry(f"sender error: {type(e).__name__}: {e}")
        # A sender may declare its own patience (webhooks: a receiver down for hours).
        max_attempts = getattr(self.sender, "max_attempts", None) or outbox_settings.max_attempts
        give_up = result.outcome is Outcome.RETRY and row.attempts >= max_attempts
        retry_in = None
        if result.outcome is Outcome.RETRY:
            retry_in = backoff_seconds(row.attempts, outbox_settings.backoff_base,
                                       outbox_settings.backoff_max, result.retry_after)
            if result.retry_after:
                # A flood wait from the channel pauses every lane of it, not just this row.
                self.limiter.pause(min(result.retry_after, 5.0))
            if give_up:
                result = DeliveryResult.permanent(
                    f"gave up after {row.attempts} attempts: {result.error}",
                    address_fault=False)
                give_up = True
        if batched and result.outcome is Outcome.SENT and not result.meta:
            try:
                await self.recorder.record(row, result)
                return
            except Exception:
                log.exception("outbox.batch_record_failed", outbox_id=row.id)
        for attempt in range(5):
            try:
                state = await self.outbox.record(row, result, retry_in=retry_in,
                                                 give_up=give_up)
                break
            except Exception:
                log.exception("outbox.record_failed", outbox_id=row.id, attempt=attempt)
                await asyncio.sleep(0.2 * (attempt + 1))
        else:
            return  # the lease will expire and the row be retried: at-least-once
        if state is not OutboxState.SENT:
            metrics.SEND_ERRORS.labels(channel=self.channel.value, kind=result.outcome.value,
                                       reason=metrics.short_reason(result.error)).inc()
            log.info("outbox.send_failed", channel=self.channel.value, outbox_id=row.id,
                     outcome=result.outcome.value, error=result.error, next_state=state.value,
                     retry_in=retry_in)
