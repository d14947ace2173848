"""Busy hours: customers' messages by weekday and hour of the day, in the team's time zone.

SQL counts the messages per hour (per quarter hour in zones off UTC by a fraction of an hour)
since 1970 (cheap on both databases, whatever the zone); those are then put in local weekdays
and hours here, so daylight saving and
zones of half or three quarters of an hour fall where a wall clock would put them.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sql
from crm.reports.period import Period
from crm.reports.sqlkit import epoch

QUARTER = 900


def step(period: Period) -> int:
    """Whole hours where the zone is a whole number of hours from UTC all period long (most
    zones); quarter hours elsewhere (India, Nepal, parts of Australia)."""
    offsets = {period.local(m).utcoffset() for m in (period.start, period.end)}
    whole = all(o is not None and o.total_seconds() % 3600 == 0 for o in offsets)
    return 3600 if whole else QUARTER


async def quarter_counts(conn: BaseDBAsyncClient, table: str, column: str, where: str,
                         params: list[object], period: Period) -> Counter[int]:
    """Rows of `table` per hour (or quarter hour: `step`) within the period, by the bucket's
    start in epoch seconds."""
    size = step(period)
    bucket = f"({epoch(conn, column)} / {size})"
    rows = await sql.fetch(conn, f"SELECT {bucket} AS q, COUNT(*) AS n FROM {table} "
                           f"WHERE {column} >= ? AND {column} < ? AND {where} GROUP BY 1",
                           [period.start, period.end, *params])
    return Counter({int(r["q"]) * size: int(r["n"]) for r in rows})


def fold(counts: Counter[int], period: Period) -> list[list[int]]:
    """7 × 24: Monday…Sunday, 00…23, local."""
    grid = [[0] * 24 for _ in range(7)]
    for start, n in counts.items():
        local = datetime.fromtimestamp(start, UTC).astimezone(period.zone)
        grid[local.weekday()][local.hour] += n
    return grid


async def busy_hours(conn: BaseDBAsyncClient, period: Period) -> list[list[int]]:
    counts = await quarter_counts(conn, "message", "created_at",
                                  "direction = 'in' AND automated = ?", [False], period)
    return fold(counts, period)


def local_days(counts: Counter[int], period: Period) -> dict[str, int]:
    """Per local day of the period (every day present, zeros included)."""
    out: dict[str, int] = {}
    day = period.local(period.start).date()
    last = period.local(period.end - timedelta(microseconds=1)).date()
    while day <= last:
        out[day.isoformat()] = 0
        day = day.fromordinal(day.toordinal() + 1)
    for start, n in counts.items():
        key = datetime.fromtimestamp(start, UTC).astimezone(period.zone).date().isoformat()
        if key in out:
            out[key] += n
    return out
