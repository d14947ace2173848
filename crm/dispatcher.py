"""The dispatcher: sends due outbox rows through each channel's sender, within its rate limits.

One loop per registered channel claims the heads of the recipients' queues, sends each in a task
(one in flight per recipient, so order per chat holds), and records the outcome at once in its own
transaction. The window in which a crash can cause a resend is between the channel accepting a
message and that commit: a few milliseconds; rows caught in it are re-queued when their lease
expires (at once on SQLite, where only one process runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections import OrderedDict

import structlog
from aiolimiter import AsyncLimiter

from crm import metrics
from crm.config import OutboxSettings
from crm.events import EventBus, OutboxQueued
from crm.outbox import Claimed, OutboxService
from crm.ports import Sender
from crm.types import Channel, DeliveryResult, OutboxState, Outcome

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


class _ChannelLoop:
    def __init__(self, dispatcher: Dispatcher, sender: Sender) -> None:
        self.d = dispatcher
        self.sender = sender
        self.channel = sender.channel
        self.wake = asyncio.Event()
        # At most a tenth of a second's worth at once: strict gateways count per second, and a
        # full second's burst on top of the steady rate would exceed it.
        rate = max(0.01, sender.limits.per_second)
        self.limiter = AsyncLimiter(max(1.0, rate / 10), max(1.0, rate / 10) / rate)
        self.recipients = _RecipientLimiters(sender)
        self.in_flight: dict[int, asyncio.Task[None]] = {}
        self.sending: set[int] = set()  # rows whose send call has begun
        self.paused_until = 0.0
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        settings = self.d.settings
        while not self.d.stopping:
            free = settings.max_in_flight - len(self.in_flight)
            # Claim in batches: one claim per finished send would cost a query per row.
            batch_ready = not self.in_flight or free >= max(1, settings.max_in_flight // 4)
            claimed: list[Claimed] = []
            # Cleared before claiming, so a row queued during the claim wakes the next round.
            self.wake.clear()
            if batch_ready and time.monotonic() >= self.paused_until:
                try:
                    claimed = await self.d.outbox.claim(self.channel, free,
                                                        settings.lease_seconds)
                except Exception:
                    log.exception("outbox.claim_failed", channel=self.channel.value)
            for row in claimed:
                if row.id in self.in_flight:
                    # Its lease ran out while it waited here and it was claimed again: the task
                    # we have will send it (start_send renews the lease); never a second one.
                    continue
                task = asyncio.create_task(self._deliver(row), name=f"send-{row.id}")
                self.in_flight[row.id] = task
                task.add_done_callback(functools.partial(self._done, row.id))
            if claimed and len(claimed) == free:
                continue  # there may be more right away
            timeout = settings.poll_interval
            if not claimed and not self.in_flight:
                due = None
                with contextlib.suppress(Exception):
                    due = await self.d.outbox.next_due_ms(self.channel)
                if due is not None:
                    timeout = min(timeout, max(0.0, due / 1000 - time.time()))
            timeout = max(timeout, self.paused_until - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=max(0.01, timeout))

    def _done(self, row_id: int, _task: object = None) -> None:
        self.in_flight.pop(row_id, None)
        self.sending.discard(row_id)
        self.wake.set()

    async def _deliver(self, row: Claimed) -> None:
        limiter = self.recipients.get(row.address)
        if limiter is not None:
            await limiter.acquire()
        await self.limiter.acquire()
        # The lease counted from the claim; waiting in the limiters may have used it up. Renew it
        # now, and send only if the row is still ours (not re-queued, cancelled or forgotten).
        if not await self.d.outbox.start_send(row.id, self.d.settings.lease_seconds):
            log.warning("outbox.lease_lost", channel=self.channel.value, outbox_id=row.id)
            return
        self.sending.add(row.id)
        # From here the send must finish and be recorded, even during shutdown.
        await asyncio.shield(self._send_and_record(row))

    async def _send_and_record(self, row: Claimed) -> None:
        outbox_settings = self.d.settings
        try:
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
                # A flood wait from the channel slows every send of the channel, not just this one.
                self.paused_until = max(self.paused_until,
                                        time.monotonic() + min(result.retry_after, 5.0))
            if give_up:
                result = DeliveryResult.permanent(
                    f"gave up after {row.attempts} attempts: {result.error}",
                    address_fault=False)
                give_up = True
        for attempt in range(5):
            try:
                state = await self.d.outbox.record(row, result, retry_in=retry_in,
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


class Dispatcher:
    """Owns one loop per channel that has a sender; wakes when rows are queued."""

    def __init__(self, outbox: OutboxService, bus: EventBus, settings: OutboxSettings) -> None:
        self.outbox = outbox
        self.settings = settings
        self.stopping = False
        self._loops: dict[Channel, _ChannelLoop] = {}
        bus.subscribe(OutboxQueued, self._on_queued)

    def register(self, sender: Sender) -> None:
        if sender.channel in self._loops:
            raise ValueError(f"a sender for {sender.channel} is already registered")
        self._loops[sender.channel] = _ChannelLoop(self, sender)

    @property
    def channels(self) -> list[Channel]:
        return list(self._loops)

    async def _on_queued(self, event: OutboxQueued) -> None:
        loop = self._loops.get(event.channel)
        if loop is not None:
            loop.wake.set()

    async def start(self, *, single_process: bool) -> None:
        # On SQLite only this process can own 'sending' rows: a leftover is from a crash.
        await self.outbox.requeue_expired(everything=single_process)
        self.stopping = False
        for loop in self._loops.values():
            loop.task = asyncio.create_task(loop.run(), name=f"dispatch-{loop.channel}")

    async def requeue_expired(self) -> None:
        await self.outbox.requeue_expired()

    async def stop(self) -> None:
        """Stop claiming; let sends already under way finish; return the rest to the queue."""
        self.stopping = True
        for loop in self._loops.values():
            loop.wake.set()
        for loop in self._loops.values():
            if loop.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await loop.task
        waiting: list[int] = []
        for loop in self._loops.values():
            for row_id, task in list(loop.in_flight.items()):
                if row_id not in loop.sending:
                    task.cancel()
                    waiting.append(row_id)
        tasks = [t for lp in self._loops.values() for t in lp.in_flight.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
        await self.outbox.release(waiting)
        log.info("dispatcher.stopped", returned_to_queue=len(waiting))
