"""Where customers come from: the funnel by lead source, and cohort retention.

Funnel: the customers whose first contact (the customer's record was created: their first
message, or an order or import that brought them) falls in the period, by lead source; of
them, how many a person answered (a first response or reply recorded), how many ordered at
least once, and at least twice (ever, up to now); and the revenue of their counted orders.

Cohorts: customers by the month of their first counted order (in the team's time zone), for
the months the period touches; for each month after it, the share of the cohort who ordered in
that month (month 0 is the first order: 100%).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sql
from crm.reports.money import ORDER_TIME, OrderRules
from crm.reports.period import Period
from crm.reports.sqlkit import source


@dataclass(frozen=True, slots=True)
class FunnelRow:
    source: str
    contacts: int
    answered: int
    ordered: int
    reordered: int
    revenue: int
    other_currency: int  # their counted orders left out of the revenue for the currency


async def funnel(conn: BaseDBAsyncClient, rules: OrderRules, period: Period) -> list[FunnelRow]:
    cond, cparams = rules.counted()
    money, mparams = rules.money()
    other, oparams = rules.other()
    rows = await sql.fetch(conn, f"""
        WITH c AS (
            SELECT cu.id AS id, {source("cu")} AS src FROM customer cu
            WHERE cu.created_at >= ? AND cu.created_at < ? AND cu.merged_into_id IS NULL
        ), bought AS (
            SELECT o.customer_id AS id, COUNT(*) AS n, SUM({money}) AS revenue,
                   SUM({other}) AS others
            FROM customer_order o
            WHERE {cond} AND o.customer_id IN (SELECT id FROM c)
            GROUP BY o.customer_id
        )
        SELECT c.src AS src, COUNT(*) AS contacts,
               SUM(CASE WHEN EXISTS (SELECT 1 FROM report_fact f WHERE f.customer_id = c.id
                   AND f.kind IN ('first_response', 'reply')) THEN 1 ELSE 0 END) AS answered,
               SUM(CASE WHEN b.n >= 1 THEN 1 ELSE 0 END) AS ordered,
               SUM(CASE WHEN b.n >= 2 THEN 1 ELSE 0 END) AS reordered,
               SUM(COALESCE(b.revenue, 0)) AS revenue, SUM(COALESCE(b.others, 0)) AS others
        FROM c LEFT JOIN bought b ON b.id = c.id
        GROUP BY c.src ORDER BY COUNT(*) DESC, c.src""",
        [period.start, period.end, *mparams, *oparams, *cparams])
    return [FunnelRow(str(r["src"]), int(r["contacts"]), int(r["answered"] or 0),
                      int(r["ordered"] or 0), int(r["reordered"] or 0), int(r["revenue"] or 0),
                      int(r["others"] or 0)) for r in rows]


def month_starts(period: Period, until: datetime) -> list[date]:
    """The first days of the local months from the period's first to `until`'s."""
    first = period.local(period.start).date().replace(day=1)
    last = until.astimezone(period.zone).date().replace(day=1)
    out = [first]
    while out[-1] < last:
        d = out[-1]
        out.append(date(d.year + d.month // 12, d.month % 12 + 1, 1))
    return out


def month_case(column: str, starts: list[datetime]) -> str:
    """The index of the local month a time falls in (-1 before the first)."""
    whens = " ".join(f"WHEN {column} < ? THEN {i - 1}" for i in range(len(starts)))
    return f"CASE {whens} ELSE {len(starts) - 1} END"


@dataclass(frozen=True, slots=True)
class Cohort:
    month: date
    size: int
    active: tuple[int, ...]  # customers who ordered in month 0, 1, 2, … after the first


async def cohorts(conn: BaseDBAsyncClient, rules: OrderRules, period: Period,
                  now: datetime) -> list[Cohort]:
    tick = timedelta(microseconds=1)
    cohort_months = month_starts(period, min(now, period.end) - tick)
    all_months = month_starts(period, max(now, period.end) - tick)
    starts = [datetime(m.year, m.month, m.day, tzinfo=period.zone).astimezone(UTC)
              for m in all_months]
    cond, cparams = rules.counted()
    case = month_case(ORDER_TIME, starts)
    rows = await sql.fetch(conn, f"""
        WITH o AS (
            SELECT o.customer_id AS id, {case} AS mi FROM customer_order o WHERE {cond}
        ), firsts AS (
            SELECT id, MIN(mi) AS c FROM o GROUP BY id
        )
        SELECT f.c AS c, o.mi - f.c AS k, COUNT(DISTINCT o.id) AS n
        FROM firsts f JOIN o ON o.id = f.id
        WHERE f.c >= 0 AND f.c < ?
        GROUP BY f.c, o.mi - f.c""", [*starts, *cparams, len(cohort_months)])
    table: dict[int, dict[int, int]] = {}
    for r in rows:
        table.setdefault(int(r["c"]), {})[int(r["k"])] = int(r["n"])
    out = []
    for index, month in enumerate(cohort_months):
        cells = table.get(index)
        if not cells:
            continue
        span = len(all_months) - index
        out.append(Cohort(month, cells.get(0, 0), tuple(cells.get(k, 0) for k in range(span))))
    return out
