"""A clock tests move by hand: services take it as `Clock`, so time travel needs no waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class TravelClock:
    """`clock()` returns a fixed moment until `advance(...)` or `set(...)` moves it.

    Start it in the past (the outbox dispatcher compares due times with the real time).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> datetime:
        self.now = moment
        return self.now


class StepClock:
    """A monotonic clock (seconds) for limiters: it stands still until `advance(seconds)`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now
