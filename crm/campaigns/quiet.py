"""Quiet hours in the customer's own time zone: when a marketing message may go. Pure.

A span such as 21:00–09:00 crosses midnight; 13:00–14:00 does not. Inside it, the message waits
for the span's end, in the customer's zone, on the right day (and through a daylight-saving
change: the local end time is converted to UTC as the zone says on that date).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@functools.lru_cache(maxsize=1024)
def zone_of(name: str | None, default: str) -> ZoneInfo:
    """The customer's zone; an unknown or missing one is the default."""
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_until(now: datetime, zone: ZoneInfo,
                span: tuple[time, time] | None) -> datetime | None:
    """None when a message may go now; else the moment (UTC) the quiet hours end."""
    if span is None:
        return None
    start, end = span
    local = now.astimezone(zone)
    moment = local.time().replace(tzinfo=None)
    inside = start <= moment < end if start < end else (moment >= start or moment < end)
    if not inside:
        return None
    day = local.date() if moment < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)
