"""Settings of campaigns: `[campaigns]` (crm/config.py holds it in `Settings`).

Durations are written with their unit ("90s", "30m", "4h", "2d"); quiet hours as a local-time
span ("21:00-09:00", or "" for none).
"""

from __future__ import annotations

import re
from datetime import time, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_duration(text: str) -> timedelta:
    """"30m" → 30 minutes; ValueError with what to write otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write a number and a unit, such as "
                         "\"90s\", \"30m\", \"4h\" or \"2d\"")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """"21:00-09:00" → (21:00, 09:00); "" → None (no quiet hours)."""
    if not text.strip():
        return None
    match = _SPAN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a span of local time: write \"21:00-09:00\" (or \"\" "
                         "for none)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"{text!r}: hours are 0-23 and minutes 0-59")
    start, end = time(h1, m1), time(h2, m2)
    if start == end:
        raise ValueError(f"{text!r}: the span starts and ends at the same time")
    return start, end


class CampaignsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # How often the sending engine looks at campaigns (start, queue the next batch, results).
    tick_seconds: float = Field(default=1.0, ge=0.1, le=60)
    # A campaign whose start passed more than this long ago when the service looks at it (it
    # was down) is not sent late: it waits as "missed" until someone starts it.
    missed_after: str = "30m"
    # Marketing waits for morning in the customer's own time zone; a campaign may say otherwise.
    quiet_hours: str = "21:00-09:00"
    # The time zone of customers who have none of their own; empty: [sla] timezone.
    timezone: str = ""
    # Pause a campaign when more than this share of the last `error_window` sends failed
    # permanently (blocked, bounced, invalid number); a campaign may say otherwise.
    error_threshold: float = Field(default=0.2, gt=0, le=1)
    error_window: int = Field(default=50, ge=5, le=10_000)
    # A customer's message within this many hours of a campaign message is a reply to it.
    reply_window_hours: float = Field(default=72.0, gt=0, le=24 * 30)
    # How long unsubscribe and tracked links (/u/, /l/) stay valid.
    link_days: float = Field(default=90.0, gt=0, le=3650)
    # Recipients queued per batch (one transaction each).
    batch_size: int = Field(default=500, ge=10, le=5000)

    @field_validator("missed_after")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: str) -> str:
        parse_quiet_hours(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if v:
            check_zone(v)
        return v

    @property
    def missed_after_delta(self) -> timedelta:
        return parse_duration(self.missed_after)


def check_zone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone name (such as Europe/Berlin or "
                         "America/New_York)") from None
    return name
