"""Reports as JSON: the figures with the previous period's, the tables, and the rows behind
them (crm/reports/render.py `to_json` is the one shape)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from web.api.schemas.common import Out, Query


class ReportQuery(Query):
    from_: str | None = Field(default=None, alias="from", max_length=40,
                              description="the first day (2026-03-01) or a time (ISO 8601); "
                                          "default: 30 days back (365 for customers, cohorts)")
    to: str | None = Field(default=None, max_length=40,
                           description="the last day, included, or a time, excluded; "
                                       "default: now")
    period: str | None = Field(default=None, max_length=40,
                               description="instead of from/to: 7d, 4w, month, 2026-03, …")
    by: Literal["manager", "channel", "tag", "source"] | None = Field(
        default=None, description="group the rows (overview, team, channels, csat)")


class RowsQuery(ReportQuery):
    group: str | None = Field(default=None, max_length=200,
                              description="only this group's rows: a manager's name, a "
                                          "channel, a tag, a source, a segment, a month, a "
                                          "campaign's number or name")
    limit: int = Field(default=1000, ge=1, le=100_000)
    offset: int = Field(default=0, ge=0)


class FigureOut(Out):
    kind: str = Field(description="count, seconds, share (0…1), money (minor units), number")
    value: float | int | None = Field(description="null: no data")
    previous: float | int | None = Field(default=None,
                                         description="the previous period of the same length")
    change: float | None = None


class TableOut(Out):
    columns: list[dict[str, str]]
    rows: list[dict[str, Any]]


class ChartOut(Out):
    kind: str = Field(description="bars, stacked, lines, heatmap, pareto or cohorts")
    title: str = Field(description="the chart's title, a key of the team's texts")
    data: dict[str, Any] = Field(description="bars, stacked, lines: `x` and `series` (name → "
                                             "values); heatmap: `grid` [weekday][hour]; "
                                             "pareto: `curve` [[share of customers, share "
                                             "of revenue]]; cohorts: `y` and `grid`")


class ReportOut(Out):
    report: str
    period: dict[str, str] | None
    by: str | None
    currency: str | None
    no_data: bool = Field(description="true: nothing to measure in the period")
    figures: dict[str, FigureOut]
    tables: dict[str, TableOut]
    notes: list[dict[str, Any]]
    chart: ChartOut | None = None


class RowsOut(Out):
    columns: list[str]
    rows: list[dict[str, Any]]
    total: int
    next_offset: int | None = Field(description="offset of the next page; null: the last")
