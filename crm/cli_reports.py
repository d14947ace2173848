"""`crm reports …`: every report on the command line, as a table, CSV or JSON, with its chart
as a PNG and the rows behind it (crm/reports)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from crm.reports.reports import ReportName

FORMATS = ("table", "csv", "json")


def _report_command(name: ReportName) -> click.Command:
    from crm.cli import _config_option, _settings, _with_db

    @click.command(name=name.value, help=_HELP[name])
    @_config_option
    @click.option("--from", "first", metavar="DATE", help="the first day (2026-03-01) or a time "
                  "(2026-03-01T10:00+03:00); default: 30 days back (a year for customers "
                  "and cohorts)")
    @click.option("--to", "last", metavar="DATE", help="the last day, included (or a time, "
                  "excluded); default: now")
    @click.option("--period", metavar="SPAN", help="instead of --from/--to: 7d, 4w, today, "
                  "yesterday, week, month, year, 2026-03, 2026-03-01..2026-03-31")
    @click.option("--by", "by", type=click.Choice(["manager", "channel", "tag", "source"]),
                  help="group the rows (overview, team, channels, csat)")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
                  show_default=True)
    @click.option("--chart", "chart", type=click.Path(dir_okay=False, writable=True),
                  metavar="FILE.png", help="also draw the chart into this PNG file")
    @click.option("--rows", "rows", is_flag=True, help="the conversations, customers or "
                  "campaign recipients behind the figures, as CSV (or JSON with --format json)")
    @click.option("--group", "only", metavar="VALUE", help="with --rows: only this group's "
                  "(a manager's name, a channel, a tag, a source, a segment, a cohort month, "
                  "a campaign's number or name)")
    @click.option("--language", type=click.Choice(["en", "ru"]), default=None,
                  help="of the words and the chart; default: the team's")
    def command(config_path: str, first: str | None, last: str | None, period: str | None,
                by: str | None, fmt: str, chart: str | None, rows: bool, only: str | None,
                language: str | None) -> None:
        from crm.reports import charts, render
        from crm.reports.period import between, parse_period
        from crm.reports.reports import Reports, dimension

        settings = _settings(config_path)
        lang = language or settings.team_language
        reports = Reports(settings)

        async def work() -> tuple[Any, bytes | None]:
            now = reports.clock()
            if period and (first or last):
                raise click.UsageError("give --period or --from/--to, not both")
            span = parse_period(period, now, reports.zone) if period else (
                between(first, last, now, reports.zone,
                        default_days=365 if name in (ReportName.CUSTOMERS,
                                                     ReportName.COHORTS) else 30)
                if first or last else None)
            group = dimension(by, name)
            if rows:
                return await reports.rows(name, span, group, only), None
            report = await reports.run(name, span, group)
            image = await charts.render(report, lang) if chart else None
            return report, image

        result, image = _with_db(settings, work)
        if rows:
            if fmt == "json":
                click.echo(json.dumps(result.rows, ensure_ascii=False, default=str, indent=1))
            else:
                click.echo(render.rows_csv(result), nl=False)
            return
        if fmt == "json":
            click.echo(json.dumps(render.to_json(result), ensure_ascii=False, default=str,
                                  indent=2))
        elif fmt == "csv":
            for table in result.tables:
                click.echo(render.table_csv(table), nl=False)
        else:
            click.echo(render.to_text(result, lang), nl=False)
        if chart and image is not None:
            Path(chart).write_bytes(image)
            click.echo(f"chart written to {chart}", err=True)

    return command


_HELP = {
    ReportName.OVERVIEW: "How the team answers: conversations, first response, reply and "
                         "resolution times (median, p90), SLA, CSAT, who waits now; with the "
                         "previous period for the trend.",
    ReportName.TEAM: "The overview's measures by manager (or --by).",
    ReportName.CHANNELS: "The overview's measures by channel (or --by).",
    ReportName.SOURCES: "The funnel by lead source: first contact, answered by a person, "
                        "first order, second order; conversion and revenue.",
    ReportName.CUSTOMERS: "Customer value: the Pareto share (customers making 80% of revenue) "
                          "and RFM segments.",
    ReportName.COHORTS: "Retention by the month of the first order.",
    ReportName.CSAT: "Survey ratings: CSAT (the share of 4 and 5) and the response rate, by "
                     "manager (or --by).",
    ReportName.HOURS: "Busy hours: customers' messages by weekday and hour, in the team's "
                      "time zone.",
    ReportName.CAMPAIGNS: "Campaigns that started in the period, in total, by channel and by "
                          "variant: recipients, skipped by reason, sent, delivered, failed, "
                          "replies, clicks, opt-outs and their rates (--rows: the recipients).",
}


@click.group()
def reports() -> None:
    """Reports: how the team answers, where customers come from, who brings the revenue."""


for _name in ReportName:
    reports.add_command(_report_command(_name))


def _rebuild_command() -> click.Command:
    from crm.cli import _config_option, _settings, _with_db

    @click.command("rebuild")
    @_config_option
    def rebuild(config_path: str) -> None:
        """Recompute the waits the service reports measure from the timeline (after an upgrade
        from a version without reports, or a change of business hours)."""
        from crm.reports.facts import Facts
        from crm.reports.facts import rebuild as run
        from crm.sla import BusinessHours

        settings = _settings(config_path)
        sla = settings.sla
        facts = Facts(BusinessHours.build(sla.timezone, sla.hours, sla.holidays))
        count = _with_db(settings, lambda: run(facts))
        click.echo(f"recorded {count} waits from the timeline")

    return rebuild


reports.add_command(_rebuild_command())
