"""What the core asks of a channel (a sender with its rate limits, a runtime with a health), and
what a channel hands what arrives to (the inbox)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from crm.types import Channel, DeliveryResult, InboundMessage, OutboundMessage

if TYPE_CHECKING:
    from crm.timeline import IngestResult


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


class Inbox(Protocol):
    """Where every adapter hands a customer's message: the customer dialogue (bot/customer.py),
    or the bare timeline where no dialogue runs (the CLI, tools). Returns once it is committed,
    so the adapter may then acknowledge the message to its source."""

    async def receive(self, msg: InboundMessage) -> IngestResult: ...
