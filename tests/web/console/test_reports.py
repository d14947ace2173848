"""Report dashboards over HTTP, on the hand-worked dataset of tests/crm/reports: every report's
page, its figures equal to the API's and the CLI's for the same period, the chart's JSON, the
period picker, the rows behind a figure, CSV, roles and escaping."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from crm.apikeys import Scope
from crm.models import Customer
from crm.reports.reports import ReportName
from crm.types import Role
from tests.crm.test_cli import crm
from tests.support.reports_data import NOW, at, seed
from tests.web.console.conftest import Browser, Console

Q1 = "from=2026-01-01&to=2026-03-31"
MARCH = "from=2026-03-01&to=2026-03-31"
XSS = "<img src=x onerror=alert(1)>"
_FIGURE = re.compile(r'data-figure="(\w+)" data-value="([^"]*)"')


async def _console(console_with: Any) -> Console:
    # One clock for the page and the API: "waiting now" is measured against it.
    console: Console = await console_with(clock=lambda: NOW,
                                          routing={"first_response_minutes": 5})
    return console


async def _api(console: Console, path: str) -> Any:
    """The API's answer for the same report, with a key of its own (reports:read)."""
    name = f"dash{len(console.browsers)}-{abs(hash(path)) % 10**6}"
    _row, key = await console.core.apikeys.create(name, [Scope.REPORTS_READ.value],
                                                  actor="test")
    async with console.browsers[0].http.get(f"{console.base}/api/v1{path}",
                                            headers={"Authorization": f"Bearer {key}"}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def _data(browser: Browser, path: str) -> Any:
    async with browser.http.get(browser.base + path) as r:
        assert r.status == 200 and r.content_type == "application/json"
        return await r.json()


def _figures(page_html: str) -> dict[str, Any]:
    return {k: json.loads(html.unescape(v)) for k, v in _FIGURE.findall(page_html)}


def _steady(value: Any) -> Any:
    """`value` without the one measure that depends on the moment it is read."""
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k != "longest_wait"}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


async def test_every_dashboard_shows_the_apis_figures(console_with: Any) -> None:
    console = await _console(console_with)
    await seed()
    lead = await console.staff("Lena", Role.LEAD)
    browser = await console.signed_in(lead)
    for name in ReportName:
        page = await browser.get(f"/console/reports/{name.value}?{Q1}")
        assert page.status == 200, (name, page.text)
        api = await _api(console, f"/reports/{name.value}?{Q1}")
        data = await _data(browser, f"/console/reports/{name.value}/data?{Q1}")
        assert data == api, name  # the chart's JSON is the API's, to the last key
        assert _figures(page.text) == {k: f["value"] for k, f in api["figures"].items()}, name
        if api["chart"] is not None and not api["no_data"]:
            assert f'data-src="/console/reports/{name.value}/data?{Q1.replace("&", "&amp;")}"' \
                in page.text, name
    overview = await browser.get(f"/console/reports/overview?{MARCH}")
    figures = _figures(overview.text)
    # The hand-worked figures (tests/support/reports_data.py), in words and as values.
    assert figures["first_response_median"] == 120 and figures["csat"] == 0.5
    assert "2 min" in overview.text and "−2 min against 4 min" in overview.text
    assert "<script>" not in overview.text  # no inline script; the chart's is a file
    assert '<script src="/console/static/chart.umd.min.js" defer>' in overview.text


async def test_figures_equal_the_command_lines(console_with: Any, db: str,
                                               tmp_path: Path) -> None:
    console = await _console(console_with)
    await seed()
    lead = await console.staff("Lena", Role.LEAD)
    browser = await console.signed_in(lead)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db}"\n[routing]\nfirst_response_minutes = 5\n')
    # Not cohorts: a cohort's months run until now, and the command line's now is today's.
    for name, period in (("overview", MARCH), ("team", MARCH), ("channels", MARCH),
                         ("sources", MARCH), ("customers", Q1), ("csat", MARCH),
                         ("hours", MARCH), ("campaigns", Q1)):
        first, last = re.findall(r"\d{4}-\d\d-\d\d", period)
        cli = json.loads(crm(config, "reports", name, "--from", first, "--to", last,
                             "--format", "json").stdout)
        page = await browser.get(f"/console/reports/{name}?{period}")
        # "Longest wait now" is measured against the clock: the command line's is a later one.
        assert _steady(_figures(page.text)) == _steady(
            {k: f["value"] for k, f in cli["figures"].items()}), name
        data = await _data(browser, f"/console/reports/{name}/data?{period}")
        assert _steady(data["tables"]) == _steady(cli["tables"]), name


async def test_the_chart_data_and_the_tables(console_with: Any) -> None:
    console = await _console(console_with)
    await seed()
    lead = await console.staff("Lena", Role.LEAD)
    browser = await console.signed_in(lead)
    data = await _data(browser, f"/console/reports/overview/data?{MARCH}")
    chart = data["chart"]
    assert chart["kind"] == "lines" and len(chart["data"]["x"]) == 31
    assert sum(chart["data"]["series"]["opened"]) == data["figures"]["opened"]["value"] == 3
    team = await browser.get(f"/console/reports/team?{MARCH}")
    assert 'id="table-groups"' in team.text and "Olga" in team.text and "1 min 30 s" in team.text
    labels = re.search(r'data-labels="([^"]*)"', team.text)
    assert labels is not None
    words = json.loads(html.unescape(labels.group(1)))
    assert words["series"]["first_response_median"] == "first response, median"
    assert words["y"] == "minutes"
    bars = await _data(browser, f"/console/reports/team/data?{MARCH}")
    assert bars["chart"]["kind"] == "bars" and "Olga" in bars["chart"]["data"]["x"]


async def test_the_rows_behind_a_figure_and_csv(console_with: Any) -> None:
    console = await _console(console_with)
    seeded = await seed()
    lead = await console.staff("Lena", Role.LEAD)
    browser = await console.signed_in(lead)
    team = await browser.get("/console/reports/team?period=2026-03")
    drill = "/console/reports/team/rows?period=2026-03&amp;group=Olga"
    assert f'href="{drill}"' in team.text
    rows = await browser.get(html.unescape(drill))
    api = await _api(console, "/reports/team/rows?period=2026-03&group=Olga")
    assert rows.status == 200 and f'data-total="{api["total"]}"' in rows.text
    assert api["total"] == 5 and "Only Olga" in rows.text
    ann = seeded.customers["Ann"].id
    assert f'href="/console/customers/{ann}"' in rows.text  # to the conversation's customer
    every = await browser.get("/console/reports/team/rows?period=2026-03")
    assert 'data-total="6"' in every.text  # every wait of March, whoever answered
    nobody = await browser.get("/console/reports/team/rows?period=2026-03&group=")
    assert 'data-total="0"' in nobody.text  # group given empty: the rows of no manager
    async with browser.http.get(
            f"{console.base}/console/reports/team/rows.csv?period=2026-03&group=Olga") as r:
        assert r.status == 200 and r.content_type == "text/csv"
        assert r.headers["Content-Disposition"].startswith('attachment; filename="report-team')
        lines = list(csv.DictReader(io.StringIO(await r.text())))
    assert len(lines) == 5 and {line["manager"] for line in lines} == {"Olga"}
    async with browser.http.get(
            f"{console.base}/console/reports/channels/csv?{MARCH}") as r:
        table = list(csv.DictReader(io.StringIO(await r.text())))
    assert {t["group"] for t in table} == {"email", "sms", "telegram"}
    hours = await browser.get(f"/console/reports/hours?{MARCH}")
    assert "/console/reports/hours/rows?from=2026-03-01&amp;to=2026-03-31&amp;group=" \
        in hours.text  # a day of the week drills to its messages


async def test_the_campaigns_dashboard(console_with: Any) -> None:
    console = await _console(console_with)
    seeded = await seed()
    marketer = await console.staff("Mia", Role.MARKETER)
    browser = await console.signed_in(marketer)
    page = await browser.get(f"/console/reports/campaigns?{MARCH}")
    assert page.status == 200 and 'id="table-campaigns"' in page.text
    assert 'id="table-channels"' in page.text and 'id="table-variants"' in page.text
    api = await _api(console, f"/reports/campaigns?{MARCH}")
    assert _figures(page.text) == {k: f["value"] for k, f in api["figures"].items()}
    assert _figures(page.text)["reply_rate"] == 0.5 and "opt-out rate" in page.text
    data = await _data(browser, f"/console/reports/campaigns/data?{MARCH}")
    assert data == api and data["chart"]["kind"] == "bars"
    sale = seeded.campaigns["Spring sale"].id
    drill = f"/console/reports/campaigns/rows?from=2026-03-01&amp;to=2026-03-31&amp;group={sale}"
    assert f'href="{drill}"' in page.text  # each line drills to its campaign's recipients
    rows = await browser.get(html.unescape(drill))
    assert rows.status == 200 and 'data-total="6"' in rows.text and "forbidden" in rows.text
    by_name = await browser.get(f"/console/reports/campaigns/rows?{MARCH}&group=Survey")
    assert 'data-total="2"' in by_name.text  # a bar of the chart names its campaign
    ru = await browser.get(f"/console/reports/campaigns?{MARCH}",
                           headers={"Accept-Language": "ru"})
    assert "Рассылки" in ru.text and "доля ответов" in ru.text and "завершена" in ru.text
    empty = await browser.get("/console/reports/campaigns?period=2026-01")
    assert 'id="no-data"' in empty.text and 'id="chart"' not in empty.text


async def test_the_period_picker_and_mistakes(console_with: Any) -> None:
    console = await _console(console_with)
    await seed()
    lead = await console.staff("Lena", Role.LEAD)
    browser = await console.signed_in(lead)
    default = await browser.get("/console/reports/overview")
    assert "2026-03-01 – 2026-03-31" in default.text  # the last 30 days and today
    assert '<option value="2026-03">' in default.text  # this month, and the two before
    assert '<option value="2026-01">' in default.text
    week = await browser.get("/console/reports/overview?period=7d&from=2026-01-01")
    assert '<option value="7d" selected>' in week.text and "2026-03-24 – 2026-03-31" in week.text
    by_tag = await browser.get(f"/console/reports/team?{MARCH}&by=tag")
    assert "by tag" in by_tag.text and "wholesale" in by_tag.text
    hours = await browser.get(f"/console/reports/hours?{MARCH}&by=tag")
    assert hours.status == 200  # grouping does not apply here: left out
    bad = await browser.get("/console/reports/overview?period=lately")
    assert bad.status == 422 and "is not a period" in bad.text
    backwards = await browser.get("/console/reports/overview?from=2026-03-10&to=2026-03-01")
    assert backwards.status == 422 and "the period is empty" in backwards.text
    colour = await browser.get("/console/reports/team?by=colour")
    assert colour.status == 422
    assert (await browser.get("/console/reports/nothing")).status == 404
    assert (await browser.get("/console/reports/nothing/data")).status == 404
    home = await browser.get("/console/reports")
    assert home.status == 303 and home.headers["Location"] == "/console/reports/overview"


@pytest.mark.parametrize(("role", "allowed"), [
    (Role.LEAD, True), (Role.MARKETER, True), (Role.ADMIN, True), (Role.MANAGER, False),
])
async def test_roles(console: Console, role: Role, allowed: bool) -> None:
    who = await console.staff("Who", role)
    browser = await console.signed_in(who)
    for path in ("/console/reports/overview", "/console/reports/overview/data",
                 "/console/reports/overview/rows", "/console/reports/overview/csv",
                 "/console/reports/overview/rows.csv"):
        page = await browser.get(path)
        assert page.status == (200 if allowed else 403), path
    home = await browser.get("/console/customers")
    assert ('href="/console/reports"' in home.text) is allowed


async def test_shop_and_customer_text_is_escaped(console_with: Any) -> None:
    console = await _console(console_with)
    await seed()
    hostile = await Customer.create(name=XSS, lead_source=XSS, created_at=at(3, 6))
    await Customer.filter(id=hostile.id).update(created_at=at(3, 6))
    lead = await console.staff("Lena", Role.LEAD)
    browser = await console.signed_in(lead)
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    for path in (f"/console/reports/sources?{MARCH}",
                 f"/console/reports/sources/rows?{MARCH}"):
        page = await browser.get(path)
        assert page.status == 200 and XSS not in page.text and escaped in page.text, path


async def test_the_dashboard_in_russian(console_with: Any) -> None:
    console = await _console(console_with)
    await seed()
    lead = await console.staff("Lena", Role.LEAD)
    browser = await console.signed_in(lead)
    page = await browser.get(f"/console/reports/team?{MARCH}", headers={"Accept-Language": "ru"})
    assert "Команда — по менеджерам" in page.text and "1 мин 30 с" in page.text
    assert "Последние 7 дней" in page.text and "Строки" in page.text
