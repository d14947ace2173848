"""Reports: a report's figures as JSON, and the conversations or customers behind them."""

from __future__ import annotations

from crm.apikeys import Scope
from crm.reports import render
from crm.reports.model import Report, Rows
from crm.reports.reports import dimension, report_name
from crm.services import Core
from web.api.routes import Call, Routes
from web.api.schemas.reports import ReportOut, ReportQuery, RowsOut, RowsQuery

routes = Routes("reports")
READ = (Scope.REPORTS_READ,)


async def report(core: Core, name: str, q: ReportQuery) -> Report:
    """The report a request asks for (the API's and the console's dashboards: one path)."""
    found = report_name(name)
    return await core.reports.run(found, core.reports.span(found, q.period, q.from_, q.to),
                                  dimension(q.by, found))


async def report_rows(core: Core, name: str, q: ReportQuery, group: str | None) -> Rows:
    found = report_name(name)
    return await core.reports.rows(found, core.reports.span(found, q.period, q.from_, q.to),
                                   dimension(q.by, found), group)


def report_out(data: Report) -> ReportOut:
    return ReportOut.model_validate(render.to_json(data))


@routes.route("GET", "/reports/{name}", summary="Get a report", scopes=READ,
              response=ReportOut, query=ReportQuery, errors=(404,))
async def get_report(call: Call[None, ReportQuery]) -> ReportOut:
    """`name`: overview, team, channels, sources, customers, cohorts, csat, hours or
    campaigns. Times in seconds, shares as fractions, money in minor units of `currency`;
    `null` is "no data"."""
    return report_out(await report(call.core, call.text["name"], call.query))


@routes.route("GET", "/reports/{name}/rows", summary="Get the rows behind a report",
              scopes=READ, response=RowsOut, query=RowsQuery, errors=(404,))
async def get_report_rows(call: Call[None, RowsQuery]) -> RowsOut:
    """The conversations (overview, team, channels, csat), messages (hours), customers
    (sources, customers, cohorts) or campaign recipients (campaigns) behind the figures,
    oldest first, paged by offset."""
    q = call.query
    found = await report_rows(call.core, call.text["name"], q, q.group)
    page = found.rows[q.offset:q.offset + q.limit]
    after = q.offset + len(page)
    return RowsOut(columns=[c.key for c in found.columns], rows=page, total=len(found.rows),
                   next_offset=after if after < len(found.rows) else None)
