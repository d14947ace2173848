"""Reports: a report's figures as JSON, and the conversations or customers behind them."""

from __future__ import annotations

from typing import Any

from crm.apikeys import Scope
from crm.reports import render
from crm.reports.period import Period, between, parse_period
from crm.reports.reports import ReportName, Reports, dimension, report_name
from web.api.routes import Call, Routes
from web.api.schemas.reports import ReportOut, ReportQuery, RowsOut, RowsQuery

routes = Routes("reports")
READ = (Scope.REPORTS_READ,)


def _span(reports: Reports, name: ReportName, q: ReportQuery) -> Period | None:
    now = reports.clock()
    if q.period:
        return parse_period(q.period, now, reports.zone)
    if q.from_ or q.to:
        return between(q.from_, q.to, now, reports.zone,
                       default_days=365 if name in (ReportName.CUSTOMERS,
                                                    ReportName.COHORTS) else 30)
    return None


def _reports(call: Call[Any, Any]) -> Reports:
    return Reports(call.core.settings, call.core.clock)


@routes.route("GET", "/reports/{name}", summary="Get a report", scopes=READ,
              response=ReportOut, query=ReportQuery, errors=(404,))
async def get_report(call: Call[None, ReportQuery]) -> ReportOut:
    """`name`: overview, team, channels, sources, customers, cohorts, csat or hours. Times in
    seconds, shares as fractions, money in minor units of `currency`; `null` is "no data"."""
    name = report_name(call.text["name"])
    reports = _reports(call)
    report = await reports.run(name, _span(reports, name, call.query),
                               dimension(call.query.by, name))
    return ReportOut.model_validate(render.to_json(report))


@routes.route("GET", "/reports/{name}/rows", summary="Get the rows behind a report",
              scopes=READ, response=RowsOut, query=RowsQuery, errors=(404,))
async def get_report_rows(call: Call[None, RowsQuery]) -> RowsOut:
    """The conversations (overview, team, channels, csat), messages (hours) or customers
    (sources, customers, cohorts) behind the figures, oldest first, paged by offset."""
    name = report_name(call.text["name"])
    reports = _reports(call)
    q = call.query
    found = await reports.rows(name, _span(reports, name, q), dimension(q.by, name), q.group)
    page = found.rows[q.offset:q.offset + q.limit]
    after = q.offset + len(page)
    return RowsOut(columns=[c.key for c in found.columns], rows=page, total=len(found.rows),
                   next_offset=after if after < len(found.rows) else None)
