"""The dispatcher: sends due outbox rows through each channel's sender, within its rate limits.

A channel's rate is shared by its lanes (crm/lanes.py): live (a manager's reply, a bot answer),
notify (mirrors and notices to managers) and bulk (campaigns, follow-ups), each with its own
budget of rows in flight. Live and notify rows are claimed as soon as they are queued and then
wait for a token at their lane's priority, ahead of every bulk waiter. Bulk takes its tokens
first and claims only as many rows as it holds tokens for, so a bulk row never sits claimed in a
limiter: it stays in the queue, claimable by another process, until it can go at once. The
lanes of one channel at work are crm/channel_lanes.py.

Each send runs in a task (one in flight per recipient, so order per chat holds) and records the
outcome at once in its own transaction (the bulk lane's plain successes a few hundredths of a
second apart, together in one: crm/channel_lanes.py `_Recorder`). The window in which a crash
can cause a resend is between the channel accepting a message and that commit: a few
milliseconds (a few hundredths of a second in the bulk lane); rows caught in it are re-queued
when their lease expires (at once on SQLite, where only one process runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from crm.channel_lanes import ChannelLanes, backoff_seconds
from crm.config import OutboxSettings
from crm.events import EventBus, OutboxQueued
from crm.lanes import LaneLimiter
from crm.outbox import OutboxService
from crm.ports import Sender
from crm.types import Channel

__all__ = ["Dispatcher", "backoff_seconds"]

log = structlog.get_logger(__name__)


class Dispatcher:
    """Owns the lanes of each channel that has a sender; wakes them when rows are queued."""

    def __init__(self, outbox: OutboxService, bus: EventBus, settings: OutboxSettings,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.outbox = outbox
        self.settings = settings
        self.monotonic = monotonic  # the limiters' clock (a test may move it by hand)
        self._senders: dict[Channel, Sender] = {}
        self._running: dict[Channel, ChannelLanes] = {}
        bus.subscribe(OutboxQueued, self._on_queued)

    def register(self, sender: Sender) -> None:
        if sender.channel in self._senders:
            raise ValueError(f"a sender for {sender.channel} is already registered")
        self._senders[sender.channel] = sender

    @property
    def channels(self) -> list[Channel]:
        return list(self._senders)

    def rate(self, channel: Channel) -> float | None:
        """The messages a second `channel` takes, or None when no sender is registered."""
        sender = self._senders.get(channel)
        return sender.limits.per_second if sender is not None else None

    def can_edit(self, channel: Channel) -> bool:
        """Whether the channel can change a message already sent (its sender says `edits`)."""
        return bool(getattr(self._senders.get(channel), "edits", False))

    def limiter(self, channel: Channel) -> LaneLimiter:
        """The limiter the lanes of `channel` share while the dispatcher runs."""
        return self._running[channel].limiter

    async def _on_queued(self, event: OutboxQueued) -> None:
        lanes = self._running.get(event.channel)
        if lanes is not None:
            lanes.queued(event)

    async def start(self, *, single_process: bool) -> None:
        # On SQLite only this process can own 'sending' rows: a leftover is from a crash.
        await self.outbox.requeue_expired(everything=single_process)
        # Built at each start, from the settings and outbox of that moment.
        self._running = {channel: ChannelLanes(sender, self.outbox, self.settings,
                                               self.monotonic)
                         for channel, sender in self._senders.items()}
        for lanes in self._running.values():
            lanes.start()

    async def requeue_expired(self) -> None:
        await self.outbox.requeue_expired()

    async def stop(self) -> None:
        """Stop claiming; let sends already under way finish; return the rest to the queue."""
        running = list(self._running.values())
        for lanes in running:
            lanes.halt()
        for lanes in running:
            for task in lanes.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        waiting: list[int] = []
        tasks: list[asyncio.Task[None]] = []
        for lanes in running:
            for lane in lanes.lanes.values():
                for row_id, task in list(lane.in_flight.items()):
                    if row_id not in lane.committed:
                        task.cancel()
                        waiting.append(row_id)
                    tasks.append(task)
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
        await self.outbox.release(waiting)
        self._running = {}
        log.info("dispatcher.stopped", returned_to_queue=len(waiting))
