"""Who brings the revenue: the Pareto curve of customers by revenue, and RFM segments.

Pareto: the customers who bought in the period, largest revenue first; the curve is the
cumulative share of revenue against the share of customers, and the headline is the smallest
share of customers (from the top) whose revenue reaches 80% of the total.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sql
from crm.reports.money import ORDER_TIME, OrderRules
from crm.reports.period import Period
from crm.reports.rfm import SEGMENTS, scores_sql


@dataclass(frozen=True, slots=True)
class Pareto:
    customers: int  # who bought in the period (revenue > 0)
    revenue: int
    top_for_80: int | None  # the fewest customers whose revenue reaches 80%
    curve: tuple[tuple[float, float], ...]  # (share of customers, share of revenue)

    @property
    def share_for_80(self) -> float | None:
        return self.top_for_80 / self.customers if self.customers and self.top_for_80 else None


async def pareto(conn: BaseDBAsyncClient, rules: OrderRules, period: Period) -> Pareto:
    cond, cparams = rules.counted()
    money, mparams = rules.money()
    rows = await sql.fetch(conn, f"""
        WITH rev AS (
            SELECT o.customer_id AS id, SUM({money}) AS revenue
            FROM customer_order o
            WHERE {cond} AND {ORDER_TIME} >= ? AND {ORDER_TIME} < ?
            GROUP BY o.customer_id
        ), ranked AS (
            SELECT revenue, ROW_NUMBER() OVER (ORDER BY revenue DESC, id) AS rn,
                   SUM(revenue) OVER (ORDER BY revenue DESC, id ROWS UNBOUNDED PRECEDING)
                       AS cum,
                   COUNT(*) OVER () AS n, SUM(revenue) OVER () AS total
            FROM rev WHERE revenue > 0
        )
        SELECT (rn * 100 + n - 1) / n AS pct, MAX(rn) AS rn, MAX(cum) AS cum, MAX(n) AS n,
               MAX(total) AS total, MIN(CASE WHEN cum * 5 >= total * 4 THEN rn END) AS reach
        FROM ranked GROUP BY (rn * 100 + n - 1) / n ORDER BY 1""",
        [*mparams, *cparams, period.start, period.end])
    if not rows:
        return Pareto(0, 0, None, ())
    n, total = int(rows[0]["n"]), int(rows[0]["total"])
    reach = [int(r["reach"]) for r in rows if r["reach"] is not None]
    curve = ((0.0, 0.0), *((int(r["rn"]) / n, float(r["cum"]) / total) for r in rows))
    return Pareto(n, total, min(reach) if reach else None, curve)


@dataclass(frozen=True, slots=True)
class SegmentRow:
    segment: str
    customers: int
    revenue: int
    orders: float
    r: float
    f: float
    m: float


async def segments(conn: BaseDBAsyncClient, rules: OrderRules,
                   period: Period) -> list[SegmentRow]:
    query, params = scores_sql(rules, period.start, period.end)
    rows = await sql.fetch(conn, f"""
        SELECT segment, COUNT(*) AS n, SUM(revenue) AS revenue, AVG(orders) AS orders,
               AVG(r) AS r, AVG(f) AS f, AVG(m) AS m
        FROM ({query}) s GROUP BY segment""", params)
    found = {str(r["segment"]): r for r in rows}
    return [SegmentRow(name.value, int(found[name.value]["n"]),
                       int(found[name.value]["revenue"] or 0),
                       float(found[name.value]["orders"]), float(found[name.value]["r"]),
                       float(found[name.value]["f"]), float(found[name.value]["m"]))
            for name, _, _ in SEGMENTS if name.value in found]
