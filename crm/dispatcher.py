"""The dispatcher: sends due outbox rows through each channel's sender, within its rate limits.

A channel's rate is shared by its lanes (crm/lanes.py): live (a manager's reply, a bot answer),
notify (mirrors and notices to managers) and bulk (campaigns, follow-ups), each with its own
budget of rows in flight. Live and notify rows are claimed as soon as they are queued and then
wait for a token at their lane's priority, ahead of every bulk waiter. Bulk takes its tokens
first and claims only as many rows as it holds tokens for, so a bulk row never sits claimed in a
limiter: it stays in the queue, claimable by another process, until it can go at once. The
lanes of one channel at work are crm/channel_lanes.py.

The limiter is the process's own, so with several processes on PostgreSQL each channel is sent
by one of them: the one holding the channel's advisory lock (crm/leader.py). The others stand
by, try the lock every `[outbox] standby_seconds`, and take over when the sender dies or stops;
a row they queue for a live or notify lane they announce with NOTIFY, so the sending process
claims it at once (bulk rows wait for its next poll). On SQLite one process sends everything.

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
import json
import time
from collections.abc import Callable

import structlog

from crm.channel_lanes import ChannelLanes, backoff_seconds
from crm.config import OutboxSettings
from crm.events import EventBus, OutboxQueued
from crm.lanes import Lane, LaneLimiter
from crm.leader import Leadership, lock_id_for
from crm.outbox import OutboxService
from crm.ports import Sender
from crm.types import Channel

__all__ = ["Dispatcher", "backoff_seconds"]

log = structlog.get_logger(__name__)


def _topic(channel: Channel) -> str:
    """The NOTIFY channel on which rows queued for `channel` are announced."""
    return f"crm_outbox_{channel.value}"


class Dispatcher:
    """Owns the lanes of each channel that has a sender; wakes them when rows are queued."""

    def __init__(self, outbox: OutboxService, bus: EventBus, settings: OutboxSettings,
                 monotonic: Callable[[], float] = time.monotonic, *,
                 lock_url: str | None = None) -> None:
        self.outbox = outbox
        self.settings = settings
        self.monotonic = monotonic  # the limiters' clock (a test may move it by hand)
        # PostgreSQL (several processes may run): each channel is sent where its lock is held.
        self.lock_url = lock_url
        self._senders: dict[Channel, Sender] = {}
        self._running: dict[Channel, ChannelLanes] = {}
        self._leads: dict[Channel, Leadership] = {}
        self._terms: dict[Channel, int] = {}  # the lock's term the running lanes started in
        self._watch: asyncio.Task[None] | None = None
        self._notifying: set[asyncio.Task[bool]] = set()
        self._stopping = asyncio.Event()
        bus.subscribe(OutboxQueued, self._on_queued)

    def register(self, sender: Sender) -> None:
        if sender.channel in self._senders:
            raise ValueError(f"a sender for {sender.channel} is already registered")
        self._senders[sender.channel] = sender

    @property
    def channels(self) -> list[Channel]:
        return list(self._senders)

    @property
    def sending(self) -> set[Channel]:
        """The channels this process sends now (every one, unless another process leads)."""
        return set(self._running)

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
            return
        lead = self._leads.get(event.channel)
        if lead is not None and Lane.of(event.priority) is not Lane.BULK:
            # Another process sends this channel: it claims the row now, not at its next poll.
            # In a task: whoever queued the row (an API call, a manager's reply) never waits for
            # the lock's connection (a reconnect may take seconds).
            task = asyncio.create_task(lead.notify(_topic(event.channel), json.dumps(
                {"priority": event.priority, "address": event.address})))
            self._notifying.add(task)
            task.add_done_callback(self._notifying.discard)

    def _heard(self, channel: Channel) -> Callable[[str], None]:
        def heard(payload: str) -> None:
            lanes = self._running.get(channel)
            try:
                said = json.loads(payload)
                event = OutboxQueued(channel, int(said["priority"]), str(said["address"]))
            except (ValueError, KeyError, TypeError):
                log.warning("outbox.bad_notify", channel=channel.value, payload=payload[:200])
                return
            if lanes is not None:
                lanes.queued(event)

        return heard

    async def start(self, *, single_process: bool) -> None:
        # On SQLite only this process can own 'sending' rows: a leftover is from a crash.
        await self.outbox.requeue_expired(everything=single_process)
        self._stopping.clear()
        self._running = {}
        if self.lock_url is None:
            for channel in self._senders:
                self._start_lanes(channel)
            return
        self._leads = {channel: Leadership(self.lock_url, lock_id_for(f"outbox:{channel.value}"),
                                           name=f"outbox.{channel.value}")
                       for channel in self._senders}
        for channel in self._leads:  # a process alone sends from its first moment
            await self._check(channel)
        self._watch = asyncio.create_task(self._watch_leads(), name="dispatch-leads")

    def _start_lanes(self, channel: Channel) -> None:
        # Built at each start, from the settings and outbox of that moment.
        lanes = ChannelLanes(self._senders[channel], self.outbox, self.settings, self.monotonic)
        self._running[channel] = lanes
        lanes.start()

    async def _check(self, channel: Channel) -> None:
        """Start the channel's lanes when this process has just taken its lock; stop them when
        the lock is lost (another process may send it now)."""
        lead = self._leads[channel]
        leading = await lead.ensure()
        if channel in self._running and (not leading or lead.terms != self._terms[channel]):
            log.warning("dispatcher.lost_channel", channel=channel.value)
            await self._wind_down([self._running.pop(channel)])
        if leading and channel not in self._running and not self._stopping.is_set():
            self._terms[channel] = lead.terms
            await lead.listen(_topic(channel), self._heard(channel))
            self._start_lanes(channel)
            log.info("dispatcher.sending", channel=channel.value)

    async def _watch_leads(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.standby_seconds)
            for channel in list(self._leads):
                if self._stopping.is_set():
                    return
                try:
                    await self._check(channel)
                except Exception:
                    log.exception("dispatcher.lead_check_failed", channel=channel.value)

    async def requeue_expired(self) -> None:
        await self.outbox.requeue_expired()

    async def stop(self) -> None:
        """Stop claiming; let sends already under way finish; return the rest to the queue; then
        let another process take the channels over."""
        self._stopping.set()
        if self._watch is not None:
            await self._watch  # it returns at once: a check under way finishes first
            self._watch = None
        running, self._running = list(self._running.values()), {}
        await self._wind_down(running)
        if self._notifying:
            await asyncio.wait(list(self._notifying), timeout=self.settings.shutdown_grace)
        for lead in self._leads.values():
            await lead.close()
        self._leads = {}

    async def _wind_down(self, running: list[ChannelLanes]) -> None:
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
        log.info("dispatcher.stopped", channels=[lanes.channel.value for lanes in running],
                 returned_to_queue=len(waiting))
