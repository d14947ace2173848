"""Business hours and response deadlines: pure arithmetic over plain data, handed `now`.

Hours are wall-clock ranges per weekday in one time zone ("09:00-13:00, 14:00-18:00"), holidays
are closed all day. Every result is an aware UTC datetime; local time exists only inside, so
daylight-saving changes move the windows the way a clock on the office wall does.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_HORIZON_DAYS = 800  # longer than any run of holidays; past it the hours are a mistake

Range = tuple[int, int]  # minutes from local midnight: [start, end), end may be 24:00


def parse_ranges(text: str) -> tuple[Range, ...]:
    """'09:00-13:00, 14:00-18:00' → ((540, 780), (840, 1080)); '' → closed all day."""
    out: list[Range] = []
    for part in (p for p in text.split(",") if p.strip()):
        m = _RANGE.match(part)
        if not m:
            raise ValueError(f"{part.strip()!r} is not a range like 09:00-18:00")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60:
            raise ValueError(f"{part.strip()!r}: not a time of day (00:00 to 24:00)")
        if end <= start:
            raise ValueError(f"{part.strip()!r}: the end must be after the start (split a "
                             "range that passes midnight over two days)")
        out.append((start, end))
    out.sort()
    for (_, end), (start, _) in itertools.pairwise(out):
        if start < end:
            raise ValueError(f"{text!r}: ranges overlap")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """When the team works. `week` holds Monday..Sunday; `always_open` ignores the rest."""

    zone: ZoneInfo
    week: tuple[tuple[Range, ...], ...]
    holidays: frozenset[date] = frozenset()
    always_open: bool = False

    @classmethod
    def around_the_clock(cls) -> BusinessHours:
        return cls(ZoneInfo("UTC"), ((),) * 7, frozenset(), always_open=True)

    @classmethod
    def build(cls, timezone: str, hours: Mapping[str, str],
              holidays: Iterable[date] = ()) -> BusinessHours:
        """From config: no hours at all means open around the clock."""
        if not hours:
            return cls(ZoneInfo(timezone), ((),) * 7, frozenset(holidays), always_open=True)
        week = tuple(parse_ranges(hours.get(day, "")) for day in WEEKDAYS)
        if not any(week):
            raise ValueError("business hours are empty on every day: give at least one range")
        return cls(ZoneInfo(timezone), week, frozenset(holidays))

    def windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open periods of a local calendar day, in UTC."""
        if day in self.holidays:
            return []
        out = []
        for start, end in self.week[day.weekday()]:
            out.append((self._at(day, start), self._at(day, end)))
        return out

    def _at(self, day: date, minutes: int) -> datetime:
        if minutes >= 24 * 60:
            day, minutes = day + timedelta(days=1), minutes - 24 * 60
        local = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60,
                         tzinfo=self.zone)
        return local.astimezone(UTC)

    def _from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open periods that end after `at`, in order (the first may have begun already)."""
        day = at.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(_HORIZON_DAYS):
            for start, end in self.windows(day):
                if end > at:
                    yield start, end
            day += timedelta(days=1)
        raise ValueError("no business hours within two years: check [sla] hours and holidays")

    def is_open(self, at: datetime) -> bool:
        if self.always_open:
            return True
        start, _ = next(self._from(at))
        return start <= at

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when open, else the moment business hours begin again."""
        if self.always_open:
            return at
        start, _ = next(self._from(at))
        return max(start, at)

    def add(self, at: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of business time after `at` (a deadline)."""
        if self.always_open:
            return at + duration
        left = duration
        for start, end in self._from(at):
            begin = max(start, at)
            if left <= end - begin:
                return begin + left
            left -= end - begin
        raise AssertionError("unreachable")  # pragma: no cover - _from raises first

    def later(self, at: datetime, delay: timedelta) -> datetime:
        """When something set `delay` ahead at `at` falls due, counted the way people at work
        count (a manager's /followup 2d, /remind 3h): whole weeks are calendar weeks, the other
        whole days are business days (the same time of day on the n-th open day after), hours
        and minutes are business time. Wall-clock when always open.

        So "1d" from Friday 16:00 is Monday 16:00, and "2h" is Monday 10:00 (hours 9-17),
        where plain business-time arithmetic would make a day 24 working hours."""
        if self.always_open:
            return at + delay
        weeks, days = divmod(delay.days, 7)
        rest = delay - timedelta(days=delay.days)
        # On the wall clock of the office: a week later is the same hour, whatever DST did.
        moment = (at.astimezone(self.zone) + timedelta(weeks=weeks)).astimezone(UTC)
        if days:
            moment = self._open_days_later(moment, days)
        elif weeks:
            moment = self.next_open(moment)
        return self.add(moment, rest) if rest else moment

    def _open_days_later(self, at: datetime, days: int) -> datetime:
        local = at.astimezone(self.zone)
        day = local.date()
        for _ in range(_HORIZON_DAYS):
            day += timedelta(days=1)
            if self.windows(day):
                days -= 1
                if not days:
                    same_time = datetime.combine(day, local.time(), tzinfo=self.zone)
                    return self.next_open(same_time.astimezone(UTC))
        raise ValueError("no business hours within two years: check [sla] hours and holidays")

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Business time from `a` to `b` (zero if b is not after a)."""
        if b <= a:
            return timedelta(0)
        if self.always_open:
            return b - a
        total = timedelta(0)
        for start, end in self._from(a):
            if start >= b:
                break
            total += min(end, b) - max(start, a)
        return total


def deadline(hours: BusinessHours, now: datetime, minutes: int) -> datetime:
    """A response deadline `minutes` of business time after `now`."""
    return hours.add(now, timedelta(minutes=minutes))


def reminder_time(now: datetime, due: datetime, before: timedelta) -> datetime:
    """When to warn the assignee: `before` ahead of the deadline, never in the past."""
    return max(now, due - before)
