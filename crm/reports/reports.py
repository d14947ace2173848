"""The reports by name: what each measures, over which period, and the rows behind it.

`Reports` is the one service the CLI, the managers' chat (/report), the weekly digest and the
API call; each report is a few SQL aggregates (crm/reports/service.py, value.py, sales.py,
hours.py, campaigns.py) put into a `Report` (crm/reports/model.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection

from crm import sql
from crm.clock import Clock, utcnow
from crm.config import Settings
from crm.errors import CrmError
from crm.models import Manager
from crm.reports import campaigns as broadcasts
from crm.reports import hours as busy
from crm.reports import sales, service, value
from crm.reports.model import Chart, Column, Figure, Kind, Report, Rows, Table
from crm.reports.money import ORDER_TIME, OrderRules, rules
from crm.reports.period import Period, between, last_days, parse_period
from crm.reports.rfm import scores_sql
from crm.reports.sqlkit import Dimension, group, source
from crm.reports.sqlkit import key as group_key


class ReportName(StrEnum):
    OVERVIEW = "overview"
    TEAM = "team"
    CHANNELS = "channels"
    SOURCES = "sources"
    CUSTOMERS = "customers"
    COHORTS = "cohorts"
    CSAT = "csat"
    HOURS = "hours"
    CAMPAIGNS = "campaigns"


SERVICE = {ReportName.OVERVIEW: None, ReportName.TEAM: Dimension.MANAGER,
           ReportName.CHANNELS: Dimension.CHANNEL, ReportName.CSAT: Dimension.MANAGER}
YEARLY = (ReportName.CUSTOMERS, ReportName.COHORTS)  # their default period: the last 365 days


class UnknownReport(CrmError):
    pass


class BadDimension(CrmError):
    """--by (the API's `by`) that does not apply."""


def report_name(text: str) -> ReportName:
    try:
        return ReportName(text.strip().lower())
    except ValueError:
        raise UnknownReport(f"no report {text!r}: use one of "
                            f"{', '.join(n.value for n in ReportName)}") from None


def dimension(text: str | None, name: ReportName) -> Dimension | None:
    if not text:
        return SERVICE.get(name)
    if name not in SERVICE:
        raise BadDimension(f"--by applies to {', '.join(n.value for n in SERVICE)}; the "
                            f"{name.value} report has its own rows")
    try:
        return Dimension(text.strip().lower())
    except ValueError:
        raise BadDimension(f"--by {text!r}: use one of "
                            f"{', '.join(d.value for d in Dimension)}") from None


# The columns a person reads in the table of a service report (JSON and CSV have them all).
SERVICE_COLUMNS = (
    Column("opened", Kind.COUNT), Column("closed", Kind.COUNT),
    Column("first_response_median", Kind.SECONDS), Column("first_response_p90", Kind.SECONDS),
    Column("first_response_bh_median", Kind.SECONDS), Column("reply_median", Kind.SECONDS),
    Column("resolution_median", Kind.SECONDS), Column("first_response_within_sla", Kind.SHARE),
    Column("csat", Kind.SHARE), Column("response_rate", Kind.SHARE),
    Column("unattended", Kind.COUNT))
CSAT_COLUMNS = (Column("surveys", Kind.COUNT), Column("ratings", Kind.COUNT),
                Column("response_rate", Kind.SHARE), Column("csat", Kind.SHARE),
                *(Column(f"rated_{n}", Kind.COUNT) for n in range(1, 6)))
ALL_MEASURES: dict[str, Kind] = {
    "opened": Kind.COUNT, "closed": Kind.COUNT,
    **{f"{p}_{s}": (Kind.COUNT if s == "count" else Kind.SECONDS)
       for p in ("first_response", "reply", "resolution") for s in service.STATS},
    "first_response_within_sla": Kind.SHARE, "reply_within_sla": Kind.SHARE,
    "surveys": Kind.COUNT, "ratings": Kind.COUNT, "csat": Kind.SHARE,
    "response_rate": Kind.SHARE, **{f"rated_{n}": Kind.COUNT for n in range(1, 6)},
    "unattended": Kind.COUNT, "unassigned": Kind.COUNT, "longest_wait": Kind.SECONDS}
NOW_ONLY = ("unattended", "unassigned", "longest_wait")  # the present: no previous period
COUNTS_FROM_ZERO = ("opened", "closed", "surveys", "ratings", "unattended", "unassigned",
                    "first_response_count", "reply_count", "resolution_count",
                    *(f"rated_{n}" for n in range(1, 6)))
HEADLINE = ("opened", "closed", "first_response_median", "first_response_p90",
            "first_response_average", "first_response_bh_median", "first_response_bh_p90",
            "reply_median", "reply_p90", "reply_bh_median", "resolution_median",
            "resolution_p90", "first_response_within_sla", "reply_within_sla", "csat",
            "response_rate", "unattended", "unassigned", "longest_wait")


class Reports:
    def __init__(self, settings: Settings, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.clock = clock
        self.zone = ZoneInfo(settings.reports.timezone or settings.sla.timezone)

    def _conn(self) -> BaseDBAsyncClient:
        return get_connection("default")

    def default_period(self, name: ReportName) -> Period:
        return last_days(365 if name in YEARLY else 30, self.clock(), self.zone)

    def span(self, name: ReportName, period: str | None = None, first: str | None = None,
             last: str | None = None) -> Period | None:
        """The period a request names (the API's and the console's `period`, else `from` and
        `to`); None: the report's default."""
        now = self.clock()
        if period:
            return parse_period(period, now, self.zone)
        if first or last:
            return between(first, last, now, self.zone,
                           default_days=365 if name in YEARLY else 30)
        return None

    def targets(self) -> service.Targets:
        return service.Targets(self.settings.routing.first_response_minutes * 60,
                               self.settings.sla.next_response_minutes * 60)

    async def rules(self) -> OrderRules:
        r = self.settings.reports
        return await rules(self._conn(), r.excluded_statuses, r.currency)

    async def run(self, name: ReportName, period: Period | None = None,
                  by: Dimension | None = None) -> Report:
        period = period or self.default_period(name)
        builders: dict[ReportName, Callable[[Period, Dimension | None],
                                            Awaitable[Report]]] = {
            ReportName.OVERVIEW: self._service, ReportName.TEAM: self._service,
            ReportName.CHANNELS: self._service, ReportName.CSAT: self._csat,
            ReportName.HOURS: self._hours, ReportName.SOURCES: self._sources,
            ReportName.CUSTOMERS: self._customers, ReportName.COHORTS: self._cohorts,
            ReportName.CAMPAIGNS: self._campaigns}
        by = (by or SERVICE.get(name)) if name in SERVICE else None
        report = await builders[name](period, by)
        return Report(name.value, report.period, report.figures, report.tables, report.chart,
                      report.by, report.currency, report.notes)

    # --- how the team answers --------------------------------------------------------------

    async def _labels(self, by: Dimension | None, keys: list[str]) -> dict[str, str]:
        if by is not Dimension.MANAGER:
            return {k: k for k in keys}
        ids = [int(k) for k in keys if k.isdigit()]
        names = {str(m.id): m.name for m in await Manager.filter(id__in=ids)} if ids else {}
        return {k: names.get(k, f"#{k}") if k else "" for k in keys}

    async def _groups(self, period: Period, by: Dimension | None,
                      only_surveys: bool = False) -> service.Groups:
        return await service.measure(self._conn(), period, by, self.targets(), self.clock(),
                                     only_surveys=only_surveys)

    def _row(self, label: str, m: dict[int, dict[str, Any]]) -> dict[str, Any]:
        row: dict[str, Any] = {"group": label}
        for key in ALL_MEASURES:
            zero = 0 if key in COUNTS_FROM_ZERO else None
            row[key] = m[1].get(key, zero)
            if key not in NOW_ONLY:
                row[f"{key}_previous"] = m[0].get(key, zero)
        return row

    async def _table(self, period: Period, by: Dimension | None, columns: tuple[Column, ...],
                     only_surveys: bool = False) -> tuple[Table, service.Groups]:
        groups = await self._groups(period, by, only_surveys)
        labels = await self._labels(by, list(groups))
        rows = sorted((self._row(labels[k], m) for k, m in groups.items()),
                      key=lambda r: (r["group"] == "", str(r["group"]).lower()))
        cols = (Column("group", Kind.TEXT), *columns)
        return Table("groups", cols, tuple(rows)), groups

    def _figures(self, groups: service.Groups, keys: tuple[str, ...]) -> tuple[Figure, ...]:
        m = groups.get("", {0: {}, 1: {}})
        row = self._row("", m)
        return tuple(Figure(k, ALL_MEASURES[k], row[k], row.get(f"{k}_previous"),
                            compared=k not in NOW_ONLY) for k in keys)

    async def _service(self, period: Period, by: Dimension | None) -> Report:
        table, groups = await self._table(period, by, SERVICE_COLUMNS)
        if by is None:
            conn = self._conn()
            opened = await busy.quarter_counts(conn, "conversation", "opened_at", "1 = 1", [],
                                               period)
            closed = await busy.quarter_counts(conn, "report_fact", "ended_at", "kind = ?",
                                               ["resolution"], period)
            days = busy.local_days(opened, period)
            chart = Chart("lines", "chart_overview", {
                "x": list(days), "series": {"opened": list(days.values()),
                                            "closed": list(busy.local_days(closed,
                                                                           period).values())}})
            return Report("", period, self._figures(groups, HEADLINE), (table,), chart)
        rows = [r for r in table.rows if r["first_response_median"] is not None]
        chart = Chart("bars", "chart_first_response", {
            "x": [r["group"] for r in rows], "unit": "minutes",
            "series": {k: [r[k] / 60 for r in rows] for k in (
                "first_response_median", "first_response_p90")}})
        return Report("", period, (), (table,), chart, by=by.value)

    async def _csat(self, period: Period, by: Dimension | None) -> Report:
        table, groups = await self._table(period, by, CSAT_COLUMNS, only_surveys=True)
        figures = self._figures(groups, ("surveys", "ratings", "response_rate", "csat")) \
            if by is None else ()
        rows = [r for r in table.rows if r["ratings"]]
        chart = Chart("stacked", "chart_csat", {
            "x": [r["group"] or "—" for r in rows],
            "series": {str(n): [r[f"rated_{n}"] for r in rows] for n in range(1, 6)}})
        return Report("", period, figures, (table,), chart, by=by.value if by else None)

    async def _hours(self, period: Period, _by: Dimension | None) -> Report:
        grid = await busy.busy_hours(self._conn(), period)
        rows = tuple({"weekday": day, **{f"h{h:02d}": grid[day][h] for h in range(24)}}
                     for day in range(7))
        columns = (Column("weekday", Kind.NUMBER),
                   *(Column(f"h{h:02d}", Kind.COUNT) for h in range(24)))
        total = sum(map(sum, grid))
        peak = max(((d, h) for d in range(7) for h in range(24)), key=lambda p: grid[p[0]][p[1]])
        figures = (Figure("messages", Kind.COUNT, total, compared=False),
                   Figure("peak_weekday", Kind.NUMBER, peak[0] if total else None, compared=False),
                   Figure("peak_hour", Kind.NUMBER, peak[1] if total else None, compared=False))
        chart = Chart("heatmap", "chart_hours", {"grid": grid, "timezone": str(period.zone)})
        return Report("", period, figures, (Table("hours", columns, rows if total else ()),),
                      chart)

    # --- where customers come from, who brings the revenue ---------------------------------

    @staticmethod
    def _notes(others: int, rules_: OrderRules) -> tuple[tuple[str, dict[str, Any]], ...]:
        """Orders of the report left out of the revenue for their currency."""
        return (("rep_note_currency", {"count": others, "currency": rules_.currency}),) \
            if others else ()

    async def _sources(self, period: Period, _by: Dimension | None) -> Report:
        rules_ = await self.rules()
        rows = await sales.funnel(self._conn(), rules_, period)

        def share(a: int, b: int) -> float | None:
            return a / b if b else None

        out: tuple[dict[str, Any], ...] = tuple({
                     "source": r.source, "contacts": r.contacts, "answered": r.answered,
                     "ordered": r.ordered, "reordered": r.reordered,
                     "answered_rate": share(r.answered, r.contacts),
                     "ordered_rate": share(r.ordered, r.answered),
                     "reordered_rate": share(r.reordered, r.ordered),
                     "conversion": share(r.ordered, r.contacts), "revenue": r.revenue,
                     "revenue_per_customer": r.revenue / r.contacts if r.contacts else None}
                    for r in rows)
        columns = (Column("source", Kind.TEXT), Column("contacts", Kind.COUNT),
                   Column("answered", Kind.COUNT), Column("answered_rate", Kind.SHARE),
                   Column("ordered", Kind.COUNT), Column("ordered_rate", Kind.SHARE),
                   Column("reordered", Kind.COUNT), Column("reordered_rate", Kind.SHARE),
                   Column("conversion", Kind.SHARE), Column("revenue", Kind.MONEY),
                   Column("revenue_per_customer", Kind.MONEY))
        totals = {k: sum(r[k] for r in out) for k in ("contacts", "answered", "ordered",
                                                       "reordered", "revenue")}
        figures = (Figure("contacts", Kind.COUNT, totals["contacts"], compared=False),
                   Figure("answered", Kind.COUNT, totals["answered"], compared=False),
                   Figure("ordered", Kind.COUNT, totals["ordered"], compared=False),
                   Figure("reordered", Kind.COUNT, totals["reordered"], compared=False),
                   Figure("conversion", Kind.SHARE,
                          share(totals["ordered"], totals["contacts"]), compared=False),
                   Figure("revenue", Kind.MONEY, totals["revenue"] if out else None,
                          compared=False))
        top = out[:10]
        chart = Chart("bars", "chart_sources", {
            "x": [r["source"] or "—" for r in top],
            "series": {k: [r[k] for r in top] for k in ("contacts", "answered", "ordered",
                                                         "reordered")}})
        return Report("", period, figures, (Table("sources", columns, out),), chart,
                      currency=rules_.currency or None,
                      notes=self._notes(sum(r.other_currency for r in rows), rules_))

    async def _customers(self, period: Period, _by: Dimension | None) -> Report:
        rules_ = await self.rules()
        conn = self._conn()
        p, segs = await value.value(conn, rules_, period)
        buyers = sum(s.customers for s in segs)
        rows = tuple({"segment": s.segment, "customers": s.customers,
                      "share": s.customers / buyers if buyers else None, "revenue": s.revenue,
                      "orders": s.orders, "r": s.r, "f": s.f, "m": s.m} for s in segs)
        columns = (Column("segment", Kind.TEXT), Column("customers", Kind.COUNT),
                   Column("share", Kind.SHARE), Column("revenue", Kind.MONEY),
                   Column("orders", Kind.NUMBER), Column("r", Kind.NUMBER),
                   Column("f", Kind.NUMBER), Column("m", Kind.NUMBER))
        figures = (Figure("buyers", Kind.COUNT, buyers, compared=False),
                   Figure("paying", Kind.COUNT, p.customers, compared=False),
                   Figure("revenue", Kind.MONEY, p.revenue if p.customers else None,
                          compared=False),
                   Figure("top_for_80", Kind.COUNT, p.top_for_80, compared=False),
                   Figure("share_for_80", Kind.SHARE, p.share_for_80, compared=False))
        chart = Chart("pareto", "chart_pareto", {
            "curve": [list(pt) for pt in p.curve], "share_for_80": p.share_for_80,
            "segments": {r["segment"]: r["customers"] for r in rows}})
        return Report("", period, figures, (Table("segments", columns, rows),), chart,
                      currency=rules_.currency or None,
                      notes=self._notes(p.other_currency, rules_))

    async def _cohorts(self, period: Period, _by: Dimension | None) -> Report:
        rules_ = await self.rules()
        found = await sales.cohorts(self._conn(), rules_, period, self.clock())
        span = max((len(c.active) for c in found), default=0)
        rows: tuple[dict[str, Any], ...] = tuple({
                      "cohort": c.month.strftime("%Y-%m"), "customers": c.size,
                      **{f"m{k}": (c.active[k] / c.size if k < len(c.active) and c.size
                                   else None) for k in range(span)}} for c in found)
        columns = (Column("cohort", Kind.TEXT), Column("customers", Kind.COUNT),
                   *(Column(f"m{k}", Kind.SHARE) for k in range(span)))
        retained = [float(r["m1"]) for r in rows if r.get("m1") is not None]
        figures = (Figure("cohort_customers", Kind.COUNT, sum(c.size for c in found),
                          compared=False),
                   Figure("second_month", Kind.SHARE,
                          sum(retained) / len(retained) if retained else None, compared=False))
        chart = Chart("cohorts", "chart_cohorts", {
            "y": [r["cohort"] for r in rows],
            "grid": [[r.get(f"m{k}") for k in range(span)] for r in rows]})
        return Report("", period, figures, (Table("cohorts", columns, rows),), chart)

    async def _campaigns(self, period: Period, _by: Dimension | None) -> Report:
        return await broadcasts.report(self._conn(), period)

    # --- drill-down ------------------------------------------------------------------------

    async def rows(self, name: ReportName, period: Period | None = None,
                   by: Dimension | None = None, only: str | None = None) -> Rows:
        """The conversations, customers or campaign recipients behind a report; `only`: one
        group's (a manager's name, a channel, a tag, a source, an RFM segment, a cohort month,
        a campaign's number or name)."""
        period = period or self.default_period(name)
        by = (by or SERVICE.get(name)) if name in SERVICE else None
        conn = self._conn()
        if name is ReportName.CAMPAIGNS:
            return await broadcasts.rows(conn, period, only)
        if name in (ReportName.OVERVIEW, ReportName.TEAM, ReportName.CHANNELS):
            out = await self._wait_rows(conn, period, by)
        elif name is ReportName.CSAT:
            out = await self._survey_rows(conn, period, by)
        elif name is ReportName.HOURS:
            out = await self._message_rows(conn, period)
        elif name is ReportName.SOURCES:
            out = await self._source_rows(conn, period)
        elif name is ReportName.CUSTOMERS:
            out = await self._rfm_rows(conn, period)
        else:
            out = await self._cohort_rows(conn, period)
        if only is not None:
            key = out.columns[0].key if name in (ReportName.HOURS,) else _group_key(out)
            want = only.strip().lower()
            out = Rows(out.columns, [r for r in out.rows if str(r.get(key, "")).lower() == want])
        return out

    async def _names(self, conn: BaseDBAsyncClient, rows: list[dict[str, Any]]) -> None:
        ids = {r["manager_id"] for r in rows if r.get("manager_id") is not None}
        names = {m.id: m.name for m in await Manager.filter(id__in=list(ids))} if ids else {}
        for r in rows:
            if "manager_id" in r:
                r["manager"] = names.get(r["manager_id"], "") if r["manager_id"] else ""

    async def _wait_rows(self, conn: BaseDBAsyncClient, period: Period,
                         by: Dimension | None) -> Rows:
        g, joins = group(conn, by, manager="f.manager_id", channel="f.channel",
                         customer_id="f.customer_id")
        rows = await sql.fetch(conn, f"""
            SELECT f.conversation_id, f.customer_id, {g} AS grp, f.kind, f.manager_id,
                   f.channel, f.started_at, f.ended_at, f.seconds, f.business_seconds,
                   (SELECT c2.name FROM customer c2 WHERE c2.id = f.customer_id) AS customer
            FROM report_fact f{joins}
            WHERE f.ended_at >= ? AND f.ended_at < ? ORDER BY f.ended_at, f.id""",
            [period.start, period.end])
        await self._names(conn, rows)
        t = self.targets()
        for r in rows:
            r["group"] = group_key(r.pop("grp"))
            if by is Dimension.MANAGER:
                r["group"] = r["manager"]
            limit = {"first_response": t.first_response, "reply": t.reply}.get(r["kind"])
            r["within_sla"] = None if limit is None else int(r["business_seconds"]) <= limit
            r["started_at"], r["ended_at"] = _iso(r["started_at"]), _iso(r["ended_at"])
        columns = _columns(("conversation_id", "customer_id", "customer", "group", "kind",
                            "manager", "channel", "started_at", "ended_at"),
                           seconds=("seconds", "business_seconds"), extra=("within_sla",))
        return Rows(columns, rows)

    async def _survey_rows(self, conn: BaseDBAsyncClient, period: Period,
                           by: Dimension | None) -> Rows:
        g, joins = group(conn, by, manager="v.assignee_id", channel="v.channel",
                         customer_id="v.customer_id")
        rows = await sql.fetch(conn, f"""
            SELECT v.id AS conversation_id, v.customer_id, {g} AS grp,
                   v.assignee_id AS manager_id, v.channel, v.survey_sent_at, v.rating,
                   v.rated_at, (SELECT c2.name FROM customer c2 WHERE c2.id = v.customer_id)
                   AS customer
            FROM conversation v{joins}
            WHERE v.survey_sent_at >= ? AND v.survey_sent_at < ? ORDER BY v.survey_sent_at""",
            [period.start, period.end])
        await self._names(conn, rows)
        for r in rows:
            r["group"] = r["manager"] if by is Dimension.MANAGER else group_key(r.pop("grp"))
            r.pop("grp", None)
            r["survey_sent_at"], r["rated_at"] = _iso(r["survey_sent_at"]), _iso(r["rated_at"])
        return Rows(_columns(("conversation_id", "customer_id", "customer", "group", "manager",
                              "channel", "survey_sent_at", "rating", "rated_at")), rows)

    async def _message_rows(self, conn: BaseDBAsyncClient, period: Period) -> Rows:
        rows = await sql.fetch(conn, """
            SELECT id AS message_id, customer_id, conversation_id, channel, created_at
            FROM message WHERE direction = 'in' AND automated = ? AND created_at >= ?
            AND created_at < ? ORDER BY created_at, id""", [False, period.start, period.end])
        for r in rows:
            at = sql.as_datetime(r["created_at"])
            assert at is not None
            local = period.local(at)
            r["weekday"], r["hour"] = local.weekday(), local.hour
            r["created_at"] = local.isoformat()
        return Rows(_columns(("weekday", "hour", "message_id", "customer_id",
                              "conversation_id", "channel", "created_at")), rows)

    async def _source_rows(self, conn: BaseDBAsyncClient, period: Period) -> Rows:
        rules_ = await self.rules()
        cond, cparams = rules_.counted()
        money, mparams = rules_.money()
        rows = await sql.fetch(conn, f"""
            SELECT cu.id AS customer_id, cu.name AS customer, {source("cu")} AS source,
                   cu.created_at AS first_contact_at,
                   (SELECT MIN(f.ended_at) FROM report_fact f WHERE f.customer_id = cu.id
                    AND f.kind IN ('first_response', 'reply')) AS answered_at,
                   (SELECT COUNT(*) FROM customer_order o WHERE o.customer_id = cu.id
                    AND {cond}) AS orders,
                   (SELECT SUM({money}) FROM customer_order o WHERE o.customer_id = cu.id
                    AND {cond}) AS revenue
            FROM customer cu
            WHERE cu.created_at >= ? AND cu.created_at < ? AND cu.merged_into_id IS NULL
            ORDER BY cu.created_at, cu.id""",
            [*cparams, *mparams, *cparams, period.start, period.end])
        for r in rows:
            r["first_contact_at"], r["answered_at"] = (_iso(r["first_contact_at"]),
                                                       _iso(r["answered_at"]))
            r["revenue"] = int(r["revenue"] or 0)
        return Rows(_columns(("source", "customer_id", "customer", "first_contact_at",
                              "answered_at", "orders"), money=("revenue",)), rows)

    async def _rfm_rows(self, conn: BaseDBAsyncClient, period: Period) -> Rows:
        query, params = scores_sql(await self.rules(), period.start, period.end)
        rows = await sql.fetch(conn, f"""
            SELECT s.segment, s.id AS customer_id, cu.name AS customer, s.last_at AS last_order_at,
                   s.orders, s.revenue, s.r, s.f, s.m
            FROM ({query}) s JOIN customer cu ON cu.id = s.id
            ORDER BY s.revenue DESC, s.id""", params)
        for r in rows:
            r["last_order_at"] = _iso(r["last_order_at"])
            r["revenue"] = int(r["revenue"] or 0)
        return Rows(_columns(("segment", "customer_id", "customer", "last_order_at", "orders",
                              "r", "f", "m"), money=("revenue",)), rows)

    async def _cohort_rows(self, conn: BaseDBAsyncClient, period: Period) -> Rows:
        rules_ = await self.rules()
        cond, cparams = rules_.counted()
        rows = await sql.fetch(conn, f"""
            SELECT o.customer_id, MIN({ORDER_TIME}) AS first_order_at, COUNT(*) AS orders,
                   (SELECT c2.name FROM customer c2 WHERE c2.id = o.customer_id) AS customer
            FROM customer_order o WHERE {cond}
            GROUP BY o.customer_id
            HAVING MIN({ORDER_TIME}) >= ? AND MIN({ORDER_TIME}) < ?
            ORDER BY 2, 1""", [*cparams, period.start, period.end])
        for r in rows:
            at = sql.as_datetime(r["first_order_at"])
            assert at is not None
            r["cohort"] = period.local(at).strftime("%Y-%m")
            r["first_order_at"] = at.isoformat()
        return Rows(_columns(("cohort", "customer_id", "customer", "first_order_at",
                              "orders")), rows)


def _iso(value: object) -> str | None:
    at = sql.as_datetime(value)
    return at.isoformat() if at else None


def _columns(texts: tuple[str, ...], *, seconds: tuple[str, ...] = (),
             money: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> tuple[Column, ...]:
    counts = {"customer_id", "conversation_id", "message_id", "orders", "rating", "weekday",
              "hour"}
    return (*(Column(k, Kind.COUNT if k in counts else Kind.TEXT) for k in texts),
            *(Column(k, Kind.SECONDS) for k in seconds), *(Column(k, Kind.MONEY) for k in money),
            *(Column(k, Kind.TEXT) for k in extra))


def _group_key(rows: Rows) -> str:
    keys = [c.key for c in rows.columns]
    for key in ("group", "segment", "source", "cohort"):
        if key in keys:
            return key
    return keys[0]

