"""What the core asks of a channel: a sender with its rate limits, and a runtime with a health."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from crm.types import Channel, DeliveryResult, OutboundMessage


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Speed limits a channel declares; the dispatcher honours them.

    `per_second` caps the whole channel; `per_recipient(address)` returns (messages, period in
    seconds) for one recipient, or None for no limit (e.g. Telegram: 1/s a private chat, 20/60 s a
    group).
    """

    per_second: float = 10.0
    per_recipient: Callable[[str], tuple[float, float] | None] = field(
        default=lambda _address: None)


class Sender(Protocol):
    """Sends one message. Returns a DeliveryResult; raises only for bugs."""

    channel: Channel
    limits: RateLimits

    async def send(self, message: OutboundMessage) -> DeliveryResult: ...


State = Literal["up", "down", "starting", "off"]


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    state: State
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return self.state in ("up", "off", "starting")


class ChannelRuntime(Protocol):
    """A running channel: receives in the background, sends through its sender."""

    channel: Channel

    @property
    def sender(self) -> Sender | None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> ChannelHealth: ...
