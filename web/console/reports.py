"""Report dashboards (leads, marketers, admins): one page per report of crm/reports, with a
period picker, the figures, the tables, a chart, the rows behind a figure and CSV.

Every figure comes from the one path the API's `GET /api/v1/reports/{name}` takes
(web/api/reports.py `report`): the chart is drawn in the browser (Chart.js, vendored) from
`/console/reports/{name}/data`, which answers exactly the API's JSON for the same query.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import ValidationError

from crm.errors import CrmError, NotFound
from crm.i18n import team
from crm.reports import render
from crm.reports.model import Report, Rows, Table
from crm.reports.reports import SERVICE, ReportName, dimension
from crm.roles import Permission
from web.api.reports import report, report_out, report_rows
from web.api.schemas.reports import ReportQuery
from web.console.guard import PATH, Visit, redirect, staff

PAGE = 100  # rows behind a figure per page
PRESETS = ("today", "yesterday", "7d", "30d", "quarter", "year")
BY = ("manager", "channel", "tag", "source")
_FIELDS = ("period", "from", "to", "by")
# The first column of each table names the group its rows drill down to.
_DRILL = {"groups": "group", "sources": "source", "segments": "segment", "cohorts": "cohort",
          "hours": "weekday", "campaigns": "campaign_id", "channels": "campaign_id",
          "variants": "campaign_id"}


def _name(visit: Visit) -> ReportName:
    raw = visit.request.match_info["name"]
    try:
        return ReportName(raw)
    except ValueError:
        raise NotFound(f"no report {raw!r}") from None


def _query(visit: Visit, name: ReportName) -> tuple[ReportQuery, dict[str, str]]:
    """The period picker's values, as the API reads them; and the same as a query string."""
    given = {k: v.strip() for k in _FIELDS if (v := visit.request.query.get(k, "")).strip()}
    if name not in SERVICE:
        given.pop("by", None)
    if "period" in given:  # the picker's preset wins over its dates, as in the API
        given.pop("from", None)
        given.pop("to", None)
    try:
        return ReportQuery.model_validate(given), given
    except ValidationError as e:
        raise CrmError("; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
                                 for err in e.errors())) from None


def _figures(r: Report, lang: str) -> list[dict[str, Any]]:
    return [{"key": f.key, "label": render.label(f.key, lang), "value": f.value,
             "previous": f.previous if f.compared else None,
             "text": render.figure_text(f, lang, r.currency),
             "change": render.change(f, lang, r.currency).strip(" ()")} for f in r.figures]


def _table(t: Table, lang: str, currency: str | None) -> dict[str, Any]:
    drill = _DRILL.get(t.key)
    return {"key": t.key, "heads": [_head(c.key, lang) for c in t.columns], "rows": [{
        "cells": [render.cell(t, c, row, lang, currency) for c in t.columns],
        "group": None if drill is None else str(row.get(drill, "")),
    } for row in t.rows]}


def _head(key: str, lang: str) -> str:
    if re.fullmatch(r"h\d\d", key):
        return key[1:]
    if re.fullmatch(r"m\d+", key):
        return f"+{key[1:]}"
    return render.label(key, lang)


_AXES = {"lines": ("axis_day", "axis_conversations"), "stacked": ("", "axis_ratings"),
         "heatmap": ("", "axis_messages"),
         "pareto": ("axis_share_customers", "axis_share_revenue"),
         "cohorts": ("axis_months_after", "axis_retained")}


def _chart_labels(r: Report, lang: str) -> dict[str, Any]:
    """The words the chart shows, in the reader's language (its data comes as JSON)."""
    assert r.chart is not None
    chart = r.chart
    series = {k: team("rep_rating", lang, n=k) if chart.kind == "stacked"
              else render.label(k, lang) for k in chart.data.get("series", {})}
    x, y = _AXES.get(chart.kind) or (
        "", "axis_minutes" if chart.title == "chart_first_response" else "axis_customers")
    return {"title": render.label(chart.title, lang), "series": series,
            "x": team("rep_axis_hour", lang, zone=chart.data.get("timezone", ""))
            if chart.kind == "heatmap" else render.label(x, lang) if x else "",
            "y": render.label(y, lang), "weekdays": [render.weekday(d, lang) for d in range(7)]}


def _months(visit: Visit) -> list[str]:
    """The picker's months: this one and the two before, in the team's time zone."""
    today = visit.core.clock().astimezone(visit.core.reports.zone).date()
    out, year, month = [], today.year, today.month
    for _ in range(3):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out


@staff(Permission.REPORTS)
async def reports_home(visit: Visit) -> web.Response:
    return redirect(f"{PATH}/reports/{ReportName.OVERVIEW.value}")


@staff(Permission.REPORTS)
async def dashboard(visit: Visit) -> web.Response:
    name = _name(visit)
    q, given = _query(visit, name)
    found = await report(visit.core, name.value, q)
    lang = visit.lang
    qs = urlencode(given)
    tables = [t for t in found.tables if t.rows and not (found.figures and t.key == "groups")]
    return visit.render("report.html", {
        "name": name.value, "names": [n.value for n in ReportName],
        "title": render.title(found, lang), "report": found, "given": given, "qs": qs,
        "figures": _figures(found, lang), "empty": found.empty,
        "tables": [_table(t, lang, found.currency) for t in tables],
        "notes": [team(k, lang, **v) for k, v in found.notes],
        "chart": _chart_labels(found, lang) if found.chart and not found.empty else None,
        "kind": found.chart.kind if found.chart else "",
        "tab_titles": {n.value: render.label(f"title_{n.value}", lang) for n in ReportName},
        "by_labels": {b: render.label(f"by_{b}", lang) for b in BY},
        "nothing": team("rep_nothing", lang),
        "presets": PRESETS, "months": _months(visit), "by_options": BY,
        "has_by": name in SERVICE, "by": found.by or ""})


@staff(Permission.REPORTS)
async def data(visit: Visit) -> web.Response:
    """The API's JSON for this report and period (the chart is drawn from it)."""
    name = _name(visit)
    q, _given = _query(visit, name)
    body = report_out(await report(visit.core, name.value, q)).model_dump_json(by_alias=True)
    return web.Response(body=body.encode(), content_type="application/json")


def _csv(text: str, filename: str) -> web.Response:
    return web.Response(body=text.encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _file_name(name: ReportName, r: Report | None, suffix: str = "") -> str:
    span = re.sub(r"[^0-9A-Za-z-]+", "_", r.period.label()) if r and r.period else ""
    return f"report-{name.value}{suffix}{'-' + span if span else ''}.csv"


@staff(Permission.REPORTS)
async def report_csv(visit: Visit) -> web.Response:
    """Every table of the report, as `crm reports NAME --format csv` writes them."""
    name = _name(visit)
    q, _given = _query(visit, name)
    found = await report(visit.core, name.value, q)
    return _csv("".join(render.table_csv(t) for t in found.tables), _file_name(name, found))


def _group(visit: Visit) -> str | None:
    """`group` given (even empty: the rows of no manager, no tag, …) or not (every row)."""
    value = visit.request.query.get("group")
    return None if value is None else value.strip()[:200]


async def _heading(visit: Visit, name: ReportName, q: ReportQuery) -> Report:
    """The report's name, period, grouping and currency, without its figures."""
    reports = visit.core.reports
    period = reports.span(name, q.period, q.from_, q.to) or reports.default_period(name)
    by = dimension(q.by, name) if name in SERVICE else None
    currency = (await reports.rules()).currency or None
    return Report(name.value, period, by=by.value if by else None, currency=currency)


@staff(Permission.REPORTS)
async def rows_csv(visit: Visit) -> web.Response:
    name = _name(visit)
    q, _given = _query(visit, name)
    found = await report_rows(visit.core, name.value, q, _group(visit))
    return _csv(render.rows_csv(found), _file_name(name, await _heading(visit, name, q),
                                                   "-rows"))


_LINKED = ("customer", "customer_id", "conversation_id")  # open the customer's page


def _row_cells(rows: Rows, lang: str, currency: str | None) -> list[dict[str, Any]]:
    t = Table("rows", rows.columns, ())
    return [{"customer_id": r.get("customer_id"), "cells": [{
        "text": render.cell(t, c, r, lang, currency),
        "link": c.key in _LINKED and r.get("customer_id") is not None} for c in rows.columns]}
        for r in rows.rows]


@staff(Permission.REPORTS)
async def drill(visit: Visit) -> web.Response:
    """The conversations, messages or customers behind a report (or one group of it)."""
    name = _name(visit)
    q, given = _query(visit, name)
    group = _group(visit)
    found = await report_rows(visit.core, name.value, q, group)
    raw = visit.request.query.get("offset", "0")
    offset = min(int(raw), len(found.rows)) if raw.isdigit() and len(raw) < 10 else 0
    page = Rows(found.columns, found.rows[offset:offset + PAGE])
    head = await _heading(visit, name, q)
    rows_qs = urlencode({**given, **({"group": group} if group is not None else {})})
    return visit.render("report_rows.html", {
        "name": name.value, "title": render.title(head, visit.lang), "group": group,
        "heads": [_head(c.key, visit.lang) for c in found.columns],
        "rows": _row_cells(page, visit.lang, head.currency), "total": len(found.rows),
        "offset": offset, "next": offset + PAGE if offset + PAGE < len(found.rows) else None,
        "qs": urlencode(given), "rows_qs": rows_qs})
