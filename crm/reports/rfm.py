"""RFM: each buying customer scored 1–5 on recency, frequency and monetary value, and named by
a segment (champions, loyal, at risk, hibernating, …).

Scores are quintiles of rank: among the n customers who bought in the window, a customer of
rank r (ascending; ties share the lowest rank) scores 1 + ⌊5(r−1)/n⌋, so equal values score
alike and the top fifth scores 5. Recency ranks the last order's time (the latest scores 5),
frequency the number of orders, monetary the revenue. The segment follows from R and F
(`SEGMENTS`, the usual RFM grid).

This module is also the hook for campaigns: `members_sql` is the statement a segment filter
(`rfm = [...]`, crm/campaigns/filters.py) embeds, and `customers_in(conn, segments, …)` runs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sql
from crm.reports.money import ORDER_TIME, OrderRules


class Segment(StrEnum):
    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL_LOYALISTS = "potential_loyalists"
    NEW_CUSTOMERS = "new_customers"
    PROMISING = "promising"
    NEED_ATTENTION = "need_attention"
    ABOUT_TO_SLEEP = "about_to_sleep"
    AT_RISK = "at_risk"
    CANNOT_LOSE = "cannot_lose"
    HIBERNATING = "hibernating"


# (segment, R scores, F scores): every one of the 25 (R, F) pairs falls in exactly one.
SEGMENTS: tuple[tuple[Segment, range, range], ...] = (
    (Segment.CHAMPIONS, range(5, 6), range(4, 6)),
    (Segment.LOYAL, range(3, 5), range(4, 6)),
    (Segment.POTENTIAL_LOYALISTS, range(4, 6), range(2, 4)),
    (Segment.NEW_CUSTOMERS, range(5, 6), range(1, 2)),
    (Segment.PROMISING, range(4, 5), range(1, 2)),
    (Segment.NEED_ATTENTION, range(3, 4), range(3, 4)),
    (Segment.ABOUT_TO_SLEEP, range(3, 4), range(1, 3)),
    (Segment.CANNOT_LOSE, range(1, 3), range(5, 6)),
    (Segment.AT_RISK, range(1, 3), range(3, 5)),
    (Segment.HIBERNATING, range(1, 3), range(1, 3)),
)


def segment_named(text: str) -> Segment:
    """A segment from how a person writes it: "at risk", "At-Risk" and "at_risk" are one."""
    return Segment("_".join(text.strip().lower().replace("-", " ").split()))


def segment(r: int, f: int) -> Segment:
    for name, rs, fs in SEGMENTS:
        if r in rs and f in fs:
            return name
    raise ValueError(f"R {r}, F {f}: scores are 1 to 5")


def segment_sql(r: str, f: str) -> str:
    """`segment` as an SQL CASE over score columns."""
    whens = " ".join(f"WHEN {r} BETWEEN {rs.start} AND {rs.stop - 1} AND {f} BETWEEN "
                     f"{fs.start} AND {fs.stop - 1} THEN '{name.value}'"
                     for name, rs, fs in SEGMENTS)
    return f"CASE {whens} END"


@dataclass(frozen=True, slots=True)
class Score:
    customer_id: int
    last_order_at: datetime
    orders: int
    revenue: int  # minor units
    r: int
    f: int
    m: int

    @property
    def segment(self) -> Segment:
        return segment(self.r, self.f)


def scores_sql(rules: OrderRules, start: datetime, end: datetime,
               extra: bool = False) -> tuple[str, list[Any]]:
    """SELECT id, last_at, orders, revenue, r, f, m, segment — one row per customer with a
    counted order in [start, end); with `extra`, also `others`: their orders left out of the
    revenue for the currency."""
    cond, cparams = rules.counted()
    money, mparams = rules.money()
    other, oparams = rules.other() if extra else ("0", [])
    query = f"""
        WITH c AS (
            SELECT o.customer_id AS id, MAX({ORDER_TIME}) AS last_at, COUNT(*) AS orders,
                   SUM({money}) AS revenue, SUM({other}) AS others
            FROM customer_order o
            WHERE {cond} AND {ORDER_TIME} >= ? AND {ORDER_TIME} < ?
            GROUP BY o.customer_id
        ), ranked AS (
            SELECT id, last_at, orders, revenue, others, COUNT(*) OVER () AS n,
                   RANK() OVER (ORDER BY last_at) AS rr, RANK() OVER (ORDER BY orders) AS rf,
                   RANK() OVER (ORDER BY revenue) AS rm
            FROM c
        ), scored AS (
            SELECT id, last_at, orders, revenue, others, 1 + (rr - 1) * 5 / n AS r,
                   1 + (rf - 1) * 5 / n AS f, 1 + (rm - 1) * 5 / n AS m
            FROM ranked
        )
        SELECT id, last_at, orders, revenue, others, r, f, m,
               {segment_sql("r", "f")} AS segment
        FROM scored"""
    return query, [*mparams, *oparams, *cparams, start, end]


async def scores(conn: BaseDBAsyncClient, rules: OrderRules, start: datetime,
                 end: datetime) -> list[Score]:
    query, params = scores_sql(rules, start, end)
    rows = await sql.fetch(conn, query + " ORDER BY id", params)
    return [Score(int(r["id"]), sql.as_datetime(r["last_at"]) or end, int(r["orders"]),
                  int(r["revenue"] or 0), int(r["r"]), int(r["f"]), int(r["m"])) for r in rows]


def members_sql(segments: Iterable[Segment], rules: OrderRules, start: datetime,
                end: datetime) -> tuple[str, list[Any]]:
    """SELECT id of the customers in any of `segments`, scored over [start, end)."""
    wanted = [Segment(s).value for s in segments]
    query, params = scores_sql(rules, start, end)
    return (f"SELECT s.id FROM ({query}) s WHERE s.segment IN "
            f"({sql.placeholders(len(wanted))})", [*params, *wanted])


async def customers_in(conn: BaseDBAsyncClient, segments: Iterable[Segment],
                       rules: OrderRules, start: datetime, end: datetime) -> list[int]:
    """The customers now in any of `segments` (what a campaign's segment filter targets)."""
    wanted = list(segments)
    if not wanted:
        return []
    query, params = members_sql(wanted, rules, start, end)
    rows = await sql.fetch(conn, query + " ORDER BY s.id", params)
    return [int(r["id"]) for r in rows]
