"""Telegram's flood limits: about 30 messages a second per bot, 1 a second per private chat,
20 a minute per group; with paid broadcasts on, messages that carry `allow_paid_broadcast` go
at up to `[telegram] paid_broadcast_rate` a second (at most 1,000), every message counted in it,
while the others keep to the free 30.

The dispatcher's limiters are leaky buckets that allow a burst; Telegram counts over a rolling
window. `Windows` is the sender's own exact guard (with a small margin), so a steady stream
stays under the limits instead of bouncing off 429s. Pure: it is handed `now`.

Telegram counts a message when it arrives, which we never see: only when we sent it and when
its answer came. Counting it from the moment it left let a send that was held up on its way
(our own loop busy, the network) land less than a second after one that left a second after
it: a 429, and the whole channel paused for a second. So a send holds its slot from the moment
it leaves, and once answered counts from the latest it can have arrived: the answer's time less
the fastest round trip seen (the part of a trip that is never shorter). The network's and our
loop's hold-ups then cost the rate only when they happen, not a margin on every send.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict, deque

from crm.ports import RateLimits

PER_BOT = (30, 1.0)
PER_PRIVATE_CHAT = (1, 1.0)
PER_GROUP = (20, 60.0)
MARGIN = 1.02  # network jitter can bring two sends closer together than we made them
JITTER = 0.99  # the dispatcher's share of the window's rate (see rate_limits)


def is_group(chat_id: str | int) -> bool:
    return str(chat_id).startswith("-")


def per_recipient(address: str) -> tuple[float, float]:
    return PER_GROUP if is_group(address) else PER_PRIVATE_CHAT


def rate_limits(paid_rate: float | None = None) -> RateLimits:
    # The dispatcher's rate sits just under the window's (30 per 1.02 s): at 30/s the window
    # would hold sends back in the order they came, so a reply the dispatcher put first would
    # wait there behind campaign messages. A send leaves a little after its token; JITTER keeps
    # two from landing closer than the window allows (bench/lanes.py: ~1% of sends wait at all).
    # With paid broadcasts the channel's rate is the paid one; the sender's own free window
    # keeps the messages without the flag (replies, notices) to 30 a second.
    ceiling = paid_rate if paid_rate else PER_BOT[0] / PER_BOT[1]
    return RateLimits(per_second=ceiling / MARGIN * JITTER, per_recipient=per_recipient)


class Window:
    """At most `count` events in any rolling `period` seconds; an event under way (sent, not yet
    answered) holds its slot until it is done and stamped."""

    def __init__(self, count: int, period: float) -> None:
        self.count = count
        self.period = period
        self.times: deque[float] = deque()  # stamps of the events done, in order
        self.under_way = 0

    def wait(self, now: float) -> float:
        while self.times and self.times[0] <= now - self.period:
            self.times.popleft()
        if len(self.times) + self.under_way < self.count:
            return 0.0
        if not self.times:  # every slot is under way: none frees before one is done
            return self.period
        return self.times[0] + self.period - now

    def begin(self) -> None:
        self.under_way += 1

    def done(self, stamp: float) -> None:
        self.under_way = max(0, self.under_way - 1)
        if not self.times or stamp >= self.times[-1]:
            self.times.append(stamp)
        else:  # answers come back out of order
            bisect.insort(self.times, stamp)


class Windows:
    """The bot's window and one per chat (the idle ones forgotten)."""

    def __init__(self, margin: float = MARGIN, size: int = 10_000,
                 group: tuple[int, float] = PER_GROUP, paid_rate: float | None = None) -> None:
        self.margin = margin
        self.group = group
        self.bot = Window(PER_BOT[0], PER_BOT[1] * margin)
        # Paid broadcasts: every message of the bot counts in this one.
        self.total = Window(int(paid_rate), margin) if paid_rate else None
        self._chats: OrderedDict[str, Window] = OrderedDict()
        self._size = size
        self.fastest = math.inf  # the shortest round trip seen, in seconds

    def _chat(self, chat_id: str) -> Window:
        window = self._chats.get(chat_id)
        if window is None:
            count, period = self.group if is_group(chat_id) else PER_PRIVATE_CHAT
            window = self._chats[chat_id] = Window(int(count), period * self.margin)
            if len(self._chats) > self._size:
                self._chats.popitem(last=False)
        self._chats.move_to_end(chat_id)
        return window

    def used(self, chat_id: str, now: float) -> float:
        """The share (0..1) of the chat's window already spent."""
        chat = self._chat(chat_id)
        chat.wait(now)  # drops what left the window
        return (len(chat.times) + chat.under_way) / chat.count

    def _windows(self, chat_id: str, paid: bool) -> list[Window]:
        chat = self._chat(chat_id)
        windows = [chat] if paid and self.total is not None else [self.bot, chat]
        if self.total is not None:
            windows.append(self.total)
        return windows

    def wait(self, chat_id: str, now: float, paid: bool = False) -> float:
        """Seconds to wait before a message to `chat_id` may go; 0: now, and it holds its
        slots until `sent` is called for it. `paid`: it carries `allow_paid_broadcast` (only
        when paid broadcasts are on)."""
        windows = self._windows(chat_id, paid)
        delay = max(w.wait(now) for w in windows)
        if delay <= 0:
            for w in windows:
                w.begin()
        return delay

    def sent(self, chat_id: str, started: float, now: float, paid: bool = False) -> None:
        """The message that `wait` let go at `started` was answered (or failed) at `now`."""
        trip = now - started
        self.fastest = min(self.fastest, trip)
        stamp = max(started, now - self.fastest)  # the latest it can have reached Telegram
        for w in self._windows(chat_id, paid):
            w.done(stamp)
