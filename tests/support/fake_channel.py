"""The core's test adapter: a channel whose sender records what it sends and fails on demand."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from crm.ports import ChannelHealth, RateLimits
from crm.types import Channel, DeliveryResult, OutboundMessage


@dataclass
class FakeSender:
    """Sends nothing anywhere: records each message; `script` decides each send's outcome."""

    channel: Channel = Channel.TEST
    limits: RateLimits = field(default_factory=lambda: RateLimits(per_second=1000))
    sent: list[OutboundMessage] = field(default_factory=list)
    attempts: list[OutboundMessage] = field(default_factory=list)
    # Outcomes to return before succeeding, in order (e.g. two retries then success).
    script: deque[DeliveryResult] = field(default_factory=deque)
    # Per-address outcomes that always apply (a blocked user).
    always: dict[str, DeliveryResult] = field(default_factory=dict)
    hold: asyncio.Event | None = None  # when set up, sends wait until it is set
    holds: dict[str, asyncio.Event] = field(default_factory=dict)  # the same, per address
    on_send: Callable[[OutboundMessage], None] | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        self.attempts.append(message)
        async with self.changed:
            self.changed.notify_all()
        if self.hold is not None:
            await self.hold.wait()
        if message.address in self.holds:
            await self.holds[message.address].wait()
        if message.address in self.always:
            result = self.always[message.address]
        elif self.script:
            result = self.script.popleft()
        else:
            self.sent.append(message)
            result = DeliveryResult.sent(f"{self.channel.value}-{len(self.sent)}")
        if self.on_send:
            self.on_send(message)
        async with self.changed:
            self.changed.notify_all()
        return result

    async def wait_sent(self, count: int, timeout: float = 15) -> list[OutboundMessage]:
        """Wait until `count` messages were sent successfully."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.sent) >= count),
                                   timeout)
        return self.sent

    async def wait_attempts(self, count: int, timeout: float = 15) -> None:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: len(self.attempts) >= count), timeout)


@dataclass
class FakeRuntime:
    fake: FakeSender
    channel: Channel = Channel.TEST
    started: bool = False

    @property
    def sender(self) -> FakeSender:
        return self.fake

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    def health(self) -> ChannelHealth:
        return ChannelHealth("up" if self.started else "down")
