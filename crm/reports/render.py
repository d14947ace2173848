"""A report in words (a table for the terminal, a summary for the managers' chat), CSV and JSON.

Words are in the reader's language (crm/locales/team.*.toml, keys `rep_…`); "no data" is said
as such, never as 0 or NaN. CSV and JSON carry the raw values (seconds, fractions, minor units)
under stable keys, for spreadsheets and programs.
"""

from __future__ import annotations

import csv
import io
import math
import re
from typing import Any

from crm.i18n import team
from crm.orders.numbers import from_minor
from crm.reports.model import Column, Figure, Kind, Report, Rows, Table

WEEKDAYS = {"en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
            "ru": ("пн", "вт", "ср", "чт", "пт", "сб", "вс")}


def label(key: str, lang: str) -> str:
    try:
        return team(f"rep_{key}", lang)
    except KeyError:
        return key


def weekday(day: int, lang: str) -> str:
    return WEEKDAYS.get(lang, WEEKDAYS["en"])[day]


def duration(seconds: float, lang: str) -> str:
    """45 s, 12 min, 1 h 05 min, 2 d 3 h — in the reader's units."""
    s = round(seconds)
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    u = {k: team(f"rep_unit_{k}", lang) for k in ("d", "h", "m", "s")}
    if d:
        return f"{d} {u['d']} {h} {u['h']}"
    if h:
        return f"{h} {u['h']} {m:02d} {u['m']}"
    if m:
        return f"{m} {u['m']}" + (f" {sec:02d} {u['s']}" if m < 10 and sec else "")
    return f"{sec} {u['s']}"


def text(kind: Kind, value: Any, lang: str, currency: str | None = None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return team("rep_no_data", lang)
    if kind is Kind.SECONDS:
        return duration(float(value), lang)
    if kind is Kind.SHARE:
        return f"{float(value) * 100:.1f}%".replace(".0%", "%")
    if kind is Kind.MONEY:
        amount = from_minor(round(float(value)), currency) or "0"
        return f"{amount} {currency}" if currency else amount
    if kind is Kind.NUMBER and isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def change(f: Figure, lang: str, currency: str | None = None) -> str:
    """"(+3 against 12)", "(−2 min against 14 min)", "" when there is nothing to compare."""
    delta = f.change
    if not f.compared:
        return ""
    if delta is None:
        return "" if f.value is None else f" ({team('rep_no_previous', lang)})"
    sign = "+" if delta > 0 else "−" if delta < 0 else "±"
    if f.kind in (Kind.COUNT, Kind.NUMBER) and float(delta).is_integer():
        amount = str(int(abs(delta)))
    elif f.kind is Kind.SHARE:
        amount = f"{abs(delta) * 100:.1f}".rstrip("0").rstrip(".") + " " + team(
            "rep_unit_pp", lang)
    else:
        amount = text(f.kind, abs(delta), lang, currency)
    return " (" + team("rep_against", lang, change=f"{sign}{amount}",
                       previous=text(f.kind, f.previous, lang, currency)) + ")"


def title(report: Report, lang: str) -> str:
    head = label(f"title_{report.name}", lang)
    if report.by:
        head += " — " + team("rep_by", lang, by=label(f"by_{report.by}", lang))
    if report.period is not None:
        head += f", {report.period.label()} ({report.period.zone.key})"
    return head


def cell(table: Table, column: Column, row: dict[str, Any], lang: str,
         currency: str | None) -> str:
    value = row.get(column.key)
    if column.key in ("group", "channel", "variant") and value == "":
        return team("rep_none", lang)  # no channel yet (skipped), no variant (A/B waits)
    if column.key == "state" and table.key == "campaigns" and isinstance(value, str):
        return label(f"campaign_state_{value}", lang)
    if column.key == "weekday" and isinstance(value, int):
        return weekday(value, lang)
    if column.key == "segment" and isinstance(value, str):
        return label(f"segment_{value}", lang)
    if column.key == "source" and value == "":
        return team("rep_unknown_source", lang)
    if column.kind is Kind.TEXT:
        return "" if value is None else str(value)
    return text(column.kind, value, lang, currency)


def grid(table: Table, lang: str, currency: str | None) -> str:
    heads = [_head(c.key, lang) for c in table.columns]
    body = [[cell(table, c, r, lang, currency) for c in table.columns] for r in table.rows]
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h)
              for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                        for i, (v, w) in enumerate(zip(row, widths, strict=True)))
              for row in body]
    return "\n".join(line.rstrip() for line in lines)


def _head(key: str, lang: str) -> str:
    """Hours are 00…23; the months after a cohort's first are +0, +1, …"""
    if re.fullmatch(r"h\d\d", key):
        return key[1:]
    if re.fullmatch(r"m\d+", key):
        return f"+{key[1:]}"
    return label(key, lang)


def to_text(report: Report, lang: str) -> str:
    out = [title(report, lang)]
    if report.empty:
        out.append(team("rep_nothing", lang))
        return "\n".join(out) + "\n"
    for f in report.figures:
        out.append(f"  {label(f.key, lang)}: {figure_text(f, lang, report.currency)}"
                   f"{change(f, lang, report.currency)}")
    for key, values in report.notes:
        out.append("  " + team(key, lang, **values))
    for table in report.tables:
        if table.rows and not (report.figures and table.key == "groups"):
            out += ["", grid(table, lang, report.currency)]
    return "\n".join(out) + "\n"


def figure_text(f: Figure, lang: str, currency: str | None) -> str:
    if f.key == "peak_weekday" and f.value is not None:
        return weekday(int(f.value), lang)
    if f.key == "peak_hour" and f.value is not None:
        return f"{int(f.value):02d}:00"
    return text(f.kind, f.value, lang, currency)


def summary(report: Report, lang: str, limit: int = 900) -> str:
    """A few lines for a chart's caption in the managers' chat."""
    lines = [title(report, lang)]
    if report.empty:
        lines.append(team("rep_nothing", lang))
    else:
        for f in report.figures[:9]:
            value = figure_text(f, lang, report.currency)
            lines.append(f"{label(f.key, lang)}: {value}{change(f, lang, report.currency)}")
        if not report.figures and report.tables:
            t = report.tables[0]
            wanted = ("group", "first_response_median", "csat", "unattended", "ratings")
            cols = tuple(c for c in t.columns if c.key in wanted) or t.columns[:3]
            for r in t.rows[:6]:
                lines.append(" · ".join(
                    cell(t, c, r, lang, report.currency) if c.key == "group"
                    else f"{label(c.key, lang)} {cell(t, c, r, lang, report.currency)}"
                    for c in cols))
        lines += [team(key, lang, **values) for key, values in report.notes]
    out = "\n".join(lines)
    return out if len(out) <= limit else out[:limit - 1] + "…"


def to_json(report: Report) -> dict[str, Any]:
    return {
        "report": report.name, "period": report.period.to_json() if report.period else None,
        "by": report.by, "currency": report.currency, "no_data": report.empty,
        "figures": {f.key: {"kind": f.kind.value, "value": f.value,
                            **({"previous": f.previous, "change": f.change}
                               if f.compared else {})} for f in report.figures},
        "tables": {t.key: {"columns": [{"key": c.key, "kind": c.kind.value} for c in t.columns],
                           "rows": list(t.rows)} for t in report.tables},
        "notes": [{"key": k, **v} for k, v in report.notes],
        # What the chart draws (crm/reports/charts.py; the console's dashboards draw it too):
        # `kind` bars, stacked, lines, heatmap, pareto or cohorts, its series in `data`.
        "chart": {"kind": report.chart.kind, "title": report.chart.title,
                  "data": report.chart.data} if report.chart else None,
    }


def table_csv(table: Table) -> str:
    keys = [c.key for c in table.columns]
    extra = [k for r in table.rows[:1] for k in r if k not in keys]
    return _csv(keys + extra, list(table.rows))


def rows_csv(rows: Rows) -> str:
    return _csv([c.key for c in rows.columns], rows.rows)


def _csv(keys: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(keys)
    for r in rows:
        writer.writerow(["" if r.get(k) is None else r.get(k) for k in keys])
    return buf.getvalue()
