"""Who brings the revenue: the Pareto curve of customers by revenue, and RFM segments.

Pareto: the customers who bought in the period, largest revenue first; the curve is the
cumulative share of revenue against the share of customers, and the headline is the smallest
share of customers (from the top) whose revenue reaches 80% of the total.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sql
from crm.reports.money import OrderRules
from crm.reports.period import Period
from crm.reports.rfm import SEGMENTS, scores_sql


@dataclass(frozen=True, slots=True)
class Pareto:
    customers: int  # who bought in the period (revenue > 0)
    revenue: int
    top_for_80: int | None  # the fewest customers whose revenue reaches 80%
    curve: tuple[tuple[float, float], ...]  # (share of customers, share of revenue)
    other_currency: int = 0  # counted orders left out of the revenue for their currency

    @property
    def share_for_80(self) -> float | None:
        return self.top_for_80 / self.customers if self.customers and self.top_for_80 else None


async def value(conn: BaseDBAsyncClient, rules: OrderRules,
                period: Period) -> tuple[Pareto, list[SegmentRow]]:
    """The Pareto curve and the RFM segments in one statement: one pass over the orders."""
    query, params = scores_sql(rules, period.start, period.end, extra=True)
    rows = await sql.fetch(conn, f"""
        WITH s AS ({query}), p AS (
            SELECT revenue, ROW_NUMBER() OVER (ORDER BY revenue DESC, id) AS rn,
                   SUM(revenue) OVER (ORDER BY revenue DESC, id ROWS UNBOUNDED PRECEDING)
                       AS cum,
                   COUNT(*) OVER () AS n, SUM(revenue) OVER () AS total
            FROM s WHERE revenue > 0
        )
        SELECT 'p' AS part, CAST((rn * 100 + n - 1) / n AS VARCHAR(8)) AS k, MAX(rn) AS a,
               MAX(cum) AS b, MAX(n) AS c, MAX(total) AS d,
               MIN(CASE WHEN cum * 5 >= total * 4 THEN rn END) AS e, NULL AS f, NULL AS g,
               (SELECT SUM(others) FROM s) AS h
        FROM p GROUP BY (rn * 100 + n - 1) / n
        UNION ALL
        SELECT 's', segment, COUNT(*), SUM(revenue), AVG(orders), AVG(r), AVG(f), AVG(m), NULL,
               NULL
        FROM s GROUP BY segment""", params)
    curve_rows = sorted((r for r in rows if r["part"] == "p"), key=lambda r: int(r["k"]))
    found = {str(r["k"]): r for r in rows if r["part"] == "s"}
    segments = [SegmentRow(name.value, int(found[name.value]["a"]),
                           int(found[name.value]["b"] or 0), float(found[name.value]["c"]),
                           float(found[name.value]["d"]), float(found[name.value]["e"]),
                           float(found[name.value]["f"]))
                for name, _, _ in SEGMENTS if name.value in found]
    if not curve_rows:
        return Pareto(0, 0, None, ()), segments
    n, total = int(curve_rows[0]["c"]), int(curve_rows[0]["d"])
    reach = [int(r["e"]) for r in curve_rows if r["e"] is not None]
    curve = ((0.0, 0.0), *((int(r["a"]) / n, float(r["b"]) / total) for r in curve_rows))
    return Pareto(n, total, min(reach) if reach else None, curve,
                  int(curve_rows[0]["h"] or 0)), segments


@dataclass(frozen=True, slots=True)
class SegmentRow:
    segment: str
    customers: int
    revenue: int
    orders: float
    r: float
    f: float
    m: float
