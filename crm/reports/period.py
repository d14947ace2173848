"""The time window of a report, and the one just before it (the trend compares the two).

Pure: handed `now` and the team's time zone. Days and months start at local midnight in that
zone (`[reports] timezone`, else `[sla] timezone`); the window is [start, end) in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from crm.errors import CrmError

_SPAN = re.compile(r"^(\d{1,4})([dw])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
WORDS = {"today": 0, "yesterday": 1, "week": 7, "month": 30, "quarter": 91, "year": 365}


class BadPeriod(CrmError):
    """A period nobody can read: the message says what would do."""


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime  # inclusive, aware UTC
    end: datetime  # exclusive, aware UTC
    zone: ZoneInfo

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def previous(self) -> Period:
        """As long as this one, ending where it starts."""
        return Period(self.start - self.length, self.start, self.zone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def label(self) -> str:
        """'2026-03-01 – 2026-03-31' in the team's zone (the last day the window touches)."""
        first = self.local(self.start).date()
        last = self.local(self.end - timedelta(microseconds=1)).date()
        return first.isoformat() if first == last else f"{first} – {last}"

    def to_json(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(),
                "timezone": str(self.zone.key)}


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def last_days(days: int, now: datetime, zone: ZoneInfo) -> Period:
    """The last `days` whole local days and today so far (`days` = 0: today so far)."""
    today = now.astimezone(zone).date()
    return Period(_midnight(today - timedelta(days=days), zone), now, zone)


def parse_period(text: str, now: datetime, zone: ZoneInfo) -> Period:
    """`7d`, `4w`, `today`, `yesterday`, `week`, `month`, `quarter`, `year`, `2026-03`,
    `2026-03-05`, or `2026-03-01..2026-03-31` (both days included)."""
    word = text.strip().lower()
    today = now.astimezone(zone).date()
    if word == "yesterday":
        return Period(_midnight(today - timedelta(days=1), zone), _midnight(today, zone), zone)
    if word in WORDS:
        return last_days(WORDS[word], now, zone)
    m = _SPAN.match(word)
    if m:
        n = int(m.group(1)) * (7 if m.group(2) == "w" else 1)
        if n < 1:
            raise BadPeriod(f"{text!r}: give at least 1d")
        return Period(now - timedelta(days=n), now, zone)
    m = _MONTH.match(word)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise BadPeriod(f"{text!r}: not a month (YYYY-MM)")
        after = date(year + month // 12, month % 12 + 1, 1)
        return Period(_midnight(date(year, month, 1), zone), _midnight(after, zone), zone)
    if ".." in word:
        first, _, last = word.partition("..")
        return between(first or None, last or None, now, zone)
    if _DAY.match(word):
        return between(word, word, now, zone)
    raise BadPeriod(f"{text!r} is not a period: use 7d, 4w, today, yesterday, week, month, "
                    "quarter, year, 2026-03, 2026-03-05 or 2026-03-01..2026-03-31")


def moment(text: str, zone: ZoneInfo, *, end: bool = False, name: str = "date") -> datetime:
    """A day (local midnight; with `end`, the midnight after it: the day is included) or an
    ISO 8601 time (without an offset: in `zone`)."""
    value = text.strip()
    try:
        if _DAY.match(value):
            day = date.fromisoformat(value)
            return _midnight(day + timedelta(days=1) if end else day, zone)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadPeriod(f"{name} {text!r}: not a date (2026-03-01) or a time "
                        "(2026-03-01T10:00+03:00)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def between(first: str | None, last: str | None, now: datetime, zone: ZoneInfo,
            default_days: int = 30) -> Period:
    """From `first` to `last` (a day is included whole); a missing end is now, a missing start
    `default_days` before the end."""
    end = moment(last, zone, end=True, name="--to") if last else now
    start = moment(first, zone, name="--from") if first else end - timedelta(days=default_days)
    if start >= end:
        raise BadPeriod(f"the period is empty: --from {first or start.date()} is not before "
                        f"--to {last or end.date()}")
    return Period(start, end, zone)
