"""A campaign's results over time: how many were sent, replied, clicked and opted out in each
stretch of time since it started, in total, per channel and per variant.

The same recipient rows as `results.stats` (crm/campaigns/results.py), counted by the moment
of each event: the sum of a series is that figure of the stats, except for messages still
queued (counted in `sent` once the engine records them). The stretch grows with the campaign's
age, so a chart has at most `MAX_POINTS` points: a minute for the first hours, a day for a
campaign whose replies came over weeks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.connection import get_connection

from crm import sql
from crm.errors import NotFound
from crm.models import Campaign
from crm.reports.sqlkit import epoch

METRICS = {"sent": "sent_at", "replied": "replied_at", "clicked": "clicked_at",
           "opted_out": "opted_out_at"}
BUCKETS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)  # seconds
MAX_POINTS = 120

Series = dict[str, list[int]]  # metric -> count per stretch


@dataclass(frozen=True, slots=True)
class Activity:
    campaign_id: int
    bucket_seconds: int
    times: tuple[datetime, ...]  # the start of each stretch (UTC)
    total: Series
    by_channel: dict[str, Series]  # "" : not assigned a channel
    by_variant: dict[str, Series]  # "" : waiting for the A/B winner

    def to_json(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "bucket_seconds": self.bucket_seconds,
                "times": [t.isoformat() for t in self.times], "total": self.total,
                "by_channel": {k or "none": v for k, v in self.by_channel.items()},
                "by_variant": {k or "none": v for k, v in self.by_variant.items()}}


def bucket_for(span: timedelta) -> int:
    """The shortest stretch that draws `span` in at most MAX_POINTS points."""
    seconds = span.total_seconds()
    return next((b for b in BUCKETS if seconds / b < MAX_POINTS), BUCKETS[-1])


def _empty(points: int) -> Series:
    return {m: [0] * points for m in METRICS}


async def activity(campaign_id: int, now: datetime) -> Activity:
    campaign = await Campaign.get_or_none(id=campaign_id)
    if campaign is None:
        raise NotFound(f"campaign #{campaign_id} does not exist (crm campaigns list)")
    start = campaign.started_at
    if start is None:
        return Activity(campaign.id, BUCKETS[0], (), _empty(0), {}, {})
    conn = get_connection("default")
    latest = await sql.fetch(conn, "SELECT " + ", ".join(
        f"MAX({column}) AS {metric}" for metric, column in METRICS.items())
        + " FROM campaign_recipient WHERE campaign_id = ?", [campaign.id])
    moments = [sql.as_datetime(v) for v in latest[0].values()]
    end = max([m for m in moments if m is not None] + [min(now, campaign.finished_at or now),
                                                          start])
    bucket = bucket_for(end - start)
    points = int((end - start).total_seconds() // bucket) + 1
    origin = int(start.timestamp())
    total = _empty(points)
    by_channel: dict[str, Series] = {}
    by_variant: dict[str, Series] = {}
    for metric, column in METRICS.items():
        rows = await sql.fetch(
            conn, f"SELECT channel, variant, ({epoch(conn, column)} - ?) / ? AS b, "
                  f"COUNT(*) AS n FROM campaign_recipient WHERE campaign_id = ? AND {column} "
                  "IS NOT NULL GROUP BY channel, variant, b", [origin, bucket, campaign.id])
        for r in rows:
            # An event a moment before the start (clocks of two processes) counts in the first.
            at = min(max(int(r["b"]), 0), points - 1)
            n = int(r["n"])
            total[metric][at] += n
            by_channel.setdefault(r["channel"] or "", _empty(points))[metric][at] += n
            by_variant.setdefault(r["variant"] or "", _empty(points))[metric][at] += n
    times = tuple(start + timedelta(seconds=bucket * i) for i in range(points))
    return Activity(campaign.id, bucket, times, total, dict(sorted(by_channel.items())),
                    dict(sorted(by_variant.items())))
