"""What a report is, whatever shows it: figures, tables and a chart, as plain values.

Values are raw: seconds, shares as fractions (0.85), money in minor units, `None` for "no
data" (nothing to measure: never shown as 0 or NaN). The CLI, the managers' chat and the API
put them in words, CSV or JSON (crm/reports/render.py); charts are drawn from `Chart`
(crm/reports/charts.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from crm.reports.period import Period


class Kind(StrEnum):
    """How a value reads."""

    COUNT = "count"
    SECONDS = "seconds"
    SHARE = "share"  # a fraction 0…1, shown as a percentage
    MONEY = "money"  # minor units of the report's currency
    NUMBER = "number"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # the CSV/JSON name; its label is team text "rep_<key>"
    kind: Kind


@dataclass(frozen=True, slots=True)
class Table:
    key: str
    columns: tuple[Column, ...]
    rows: tuple[dict[str, Any], ...]

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


@dataclass(frozen=True, slots=True)
class Figure:
    """One headline number, with the previous period's for the trend (None: not compared)."""

    key: str
    kind: Kind
    value: float | int | None
    previous: float | int | None = None
    compared: bool = True

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None or not self.compared:
            return None
        return float(self.value) - float(self.previous)


@dataclass(frozen=True, slots=True)
class Chart:
    """What to draw: `kind` is bars, stacked, lines, heatmap or pareto; `data` its series."""

    kind: str
    title: str  # team text key
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    period: Period | None
    figures: tuple[Figure, ...] = ()
    tables: tuple[Table, ...] = ()
    chart: Chart | None = None
    by: str | None = None
    currency: str | None = None
    # Team text keys (with values) worth saying under the figures: orders left out, …
    notes: tuple[tuple[str, dict[str, Any]], ...] = field(default=())

    @property
    def empty(self) -> bool:
        return all(f.value is None or (f.kind is Kind.COUNT and not f.value)
                   for f in self.figures) and not any(t.rows for t in self.tables)

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)


@dataclass(frozen=True, slots=True)
class Rows:
    """The conversations or customers behind a report's figures (drill-down)."""

    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]
