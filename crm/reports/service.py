"""How the team answers: conversations opened and closed, first response, reply and
resolution times (median, p90, average; wall clock and business hours), the share within the
SLA, CSAT and the survey's response rate, and who is waiting now — in total or by manager,
channel, tag or lead source, for a period and the one before it.

Times come from the recorded waits (report_fact, crm/reports/facts.py): a wait belongs to the
period in which it ended. Conversations opened count by `opened_at`; surveys by the time they
were sent; "waiting now" is the present, whatever the period.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sql
from crm.reports.period import Period
from crm.reports.sqlkit import Dimension, group, key, quantile
from crm.types import FactKind

WAITS = (FactKind.FIRST_RESPONSE, FactKind.REPLY, FactKind.RESOLUTION)
_PREFIX = {FactKind.FIRST_RESPONSE: "first_response", FactKind.REPLY: "reply",
           FactKind.RESOLUTION: "resolution"}
STATS = ("median", "p90", "average", "bh_median", "bh_p90", "bh_average", "count")


@dataclass(frozen=True, slots=True)
class Targets:
    """The SLA, in business seconds: `[routing] first_response_minutes` and `[sla]
    next_response_minutes`."""

    first_response: int
    reply: int


Measures = dict[str, Any]  # measure key -> value (None: no data)
Groups = dict[str, dict[int, Measures]]  # group key -> {1: this period, 0: the one before}


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


async def waits(conn: BaseDBAsyncClient, period: Period, by: Dimension | None,
                targets: Targets, out: Groups) -> None:
    """Median, p90 and average of each kind of wait, wall clock and business, by group."""
    g, joins = group(conn, by, manager="f.manager_id", channel="f.channel",
                     customer_id="f.customer_id")
    rows = await sql.fetch(conn, f"""
        WITH base AS (
            SELECT {g} AS g, f.kind AS kind, f.seconds AS s, f.business_seconds AS b,
                   CASE WHEN f.ended_at >= ? THEN 1 ELSE 0 END AS cur
            FROM report_fact f{joins}
            WHERE f.ended_at >= ? AND f.ended_at < ?
        ), ranked AS (
            SELECT g, kind, cur, s, b,
                   ROW_NUMBER() OVER (PARTITION BY g, kind, cur ORDER BY s) AS rs,
                   ROW_NUMBER() OVER (PARTITION BY g, kind, cur ORDER BY b) AS rb,
                   COUNT(*) OVER (PARTITION BY g, kind, cur) AS n
            FROM base
        )
        SELECT g, kind, cur, COUNT(*) AS cnt, AVG(s) AS avg_s, AVG(b) AS avg_b,
               {quantile("rs", "n", "s", 1, 2)} AS med_s,
               {quantile("rs", "n", "s", 9, 10)} AS p90_s,
               {quantile("rb", "n", "b", 1, 2)} AS med_b,
               {quantile("rb", "n", "b", 9, 10)} AS p90_b,
               SUM(CASE WHEN b <= CASE WHEN kind = 'first_response' THEN CAST(? AS BIGINT)
                   ELSE CAST(? AS BIGINT) END
                   THEN 1 ELSE 0 END) AS within
        FROM ranked GROUP BY g, kind, cur""",
        [period.start, period.previous.start, period.end, targets.first_response,
         targets.reply])
    for r in rows:
        m = out[key(r["g"])][int(r["cur"])]
        kind = FactKind(r["kind"])
        p = _PREFIX[kind]
        m[f"{p}_count"] = int(r["cnt"])
        m[f"{p}_median"], m[f"{p}_p90"] = _num(r["med_s"]), _num(r["p90_s"])
        m[f"{p}_average"] = _num(r["avg_s"])
        m[f"{p}_bh_median"], m[f"{p}_bh_p90"] = _num(r["med_b"]), _num(r["p90_b"])
        m[f"{p}_bh_average"] = _num(r["avg_b"])
        if kind is FactKind.RESOLUTION:
            m["closed"] = int(r["cnt"])
        else:
            m[f"{p}_within_sla"] = int(r["within"]) / int(r["cnt"])


async def opened(conn: BaseDBAsyncClient, period: Period, by: Dimension | None,
                 out: Groups) -> None:
    g, joins = group(conn, by, manager="v.assignee_id", channel="v.channel",
                     customer_id="v.customer_id")
    rows = await sql.fetch(conn, f"""
        SELECT {g} AS g, CASE WHEN v.opened_at >= ? THEN 1 ELSE 0 END AS cur, COUNT(*) AS n
        FROM conversation v{joins}
        WHERE v.opened_at >= ? AND v.opened_at < ?
        GROUP BY 1, 2""", [period.start, period.previous.start, period.end])
    for r in rows:
        out[key(r["g"])][int(r["cur"])]["opened"] = int(r["n"])


async def surveys(conn: BaseDBAsyncClient, period: Period, by: Dimension | None,
                  out: Groups) -> None:
    """CSAT of the surveys sent in the period: the share of 4 and 5 among the answers, and
    the share answered; each rating 1…5 counted."""
    g, joins = group(conn, by, manager="v.assignee_id", channel="v.channel",
                     customer_id="v.customer_id")
    ratings = ", ".join(f"SUM(CASE WHEN v.rating = {n} THEN 1 ELSE 0 END) AS r{n}"
                        for n in range(1, 6))
    rows = await sql.fetch(conn, f"""
        SELECT {g} AS g, CASE WHEN v.survey_sent_at >= ? THEN 1 ELSE 0 END AS cur,
               COUNT(*) AS sent, COUNT(v.rating) AS rated, {ratings}
        FROM conversation v{joins}
        WHERE v.survey_sent_at >= ? AND v.survey_sent_at < ?
        GROUP BY 1, 2""", [period.start, period.previous.start, period.end])
    for r in rows:
        m = out[key(r["g"])][int(r["cur"])]
        sent, rated = int(r["sent"]), int(r["rated"])
        m["surveys"], m["ratings"] = sent, rated
        m["response_rate"] = rated / sent if sent else None
        good = int(r["r4"] or 0) + int(r["r5"] or 0)
        m["csat"] = good / rated if rated else None
        for n in range(1, 6):
            m[f"rated_{n}"] = int(r[f"r{n}"] or 0)


async def waiting_now(conn: BaseDBAsyncClient, by: Dimension | None, now: datetime,
                      out: Groups) -> None:
    """Conversations whose customer waits for a person right now, and the longest wait."""
    g, joins = group(conn, by, manager="v.assignee_id", channel="v.channel",
                     customer_id="v.customer_id")
    rows = await sql.fetch(conn, f"""
        SELECT {g} AS g, COUNT(*) AS n, MIN(v.waiting_since) AS since,
               SUM(CASE WHEN v.assignee_id IS NULL THEN 1 ELSE 0 END) AS unassigned
        FROM conversation v{joins}
        WHERE v.status IN ('open', 'waiting') AND v.waiting_since IS NOT NULL
        GROUP BY 1""")
    for r in rows:
        m = out[key(r["g"])][1]
        m["unattended"] = int(r["n"])
        m["unassigned"] = int(r["unassigned"] or 0)
        since = sql.as_datetime(r["since"])
        m["longest_wait"] = (now - since).total_seconds() if since else None


async def measure(conn: BaseDBAsyncClient, period: Period, by: Dimension | None,
                  targets: Targets, now: datetime, *, only_surveys: bool = False) -> Groups:
    out: Groups = defaultdict(lambda: {0: {}, 1: {}})
    if not only_surveys:
        await waits(conn, period, by, targets, out)
        await opened(conn, period, by, out)
    await surveys(conn, period, by, out)
    if not only_surveys:
        await waiting_now(conn, by, now, out)
    return dict(out)
