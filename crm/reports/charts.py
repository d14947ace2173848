"""Charts of the reports as PNG: bars, stacked bars, lines, the busy-hours heatmap, the cohort
table and the Pareto curve, labelled in the reader's language.

matplotlib's Agg backend through the Figure API (pyplot holds global state, and we draw from
threads); imported on first use (it costs about 0.4 s). `render` runs the drawing in a thread so
the event loop goes on. DejaVu Sans, bundled with matplotlib, has the Cyrillic letters.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from crm.i18n import team
from crm.reports.model import Chart, Report
from crm.reports.render import label, weekday

WIDTH, HEIGHT, DPI = 1200, 700, 100
RATING_COLOURS = ("#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850")


def png(report: Report, lang: str, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """The report's chart (or a page saying there is no data), `width` × `height` pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    chart = report.chart
    heading = label(chart.title, lang) if chart else label(f"title_{report.name}", lang)
    if report.period is not None:
        heading += f"\n{report.period.label()} ({report.period.zone.key})"
    fig.suptitle(heading, fontsize=13)
    if chart is None or report.empty or not _has_data(chart):
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, team("rep_nothing", lang), ha="center", va="center", fontsize=18,
                color="#666666")
    else:
        DRAW[chart.kind](fig, chart, lang)
    fig.subplots_adjust(top=0.86)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


async def render(report: Report, lang: str, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    return await asyncio.to_thread(png, report, lang, width, height)


def _has_data(chart: Chart) -> bool:
    d = chart.data
    if chart.kind == "heatmap":
        return any(any(row) for row in d["grid"])
    if chart.kind == "cohorts":
        return bool(d["grid"])
    if chart.kind == "pareto":
        return len(d["curve"]) > 1
    return bool(d.get("x")) and any(any(v) for v in d["series"].values())


def _series_label(key: str, lang: str) -> str:
    return label(key, lang)


def _whole(ax: Any) -> None:
    """Counts: whole numbers on the axis."""
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _lines(fig: Any, chart: Chart, lang: str) -> None:
    ax = fig.add_subplot()
    x = chart.data["x"]
    for key, values in chart.data["series"].items():
        ax.plot(range(len(x)), values, marker="o", markersize=3, label=_series_label(key, lang))
    step = max(1, len(x) // 12)
    ax.set_xticks(range(0, len(x), step), [x[i][5:] for i in range(0, len(x), step)],
                  rotation=45, ha="right")
    ax.set_xlabel(label("axis_day", lang))
    ax.set_ylabel(label("axis_conversations", lang))
    _whole(ax)
    ax.grid(alpha=0.3)
    ax.legend()


def _bars(fig: Any, chart: Chart, lang: str) -> None:
    ax = fig.add_subplot()
    x = chart.data["x"]
    series = chart.data["series"]
    width = 0.8 / max(1, len(series))
    for i, (key, values) in enumerate(series.items()):
        pos = [j + (i - (len(series) - 1) / 2) * width for j in range(len(x))]
        bars = ax.bar(pos, values, width, label=_series_label(key, lang))
        ax.bar_label(bars, fmt="%.0f" if chart.data.get("unit") != "minutes" else "%.1f",
                     fontsize=8)
    ax.set_xticks(range(len(x)), [str(v)[:18] for v in x], rotation=30 if len(x) > 6 else 0,
                  ha="right" if len(x) > 6 else "center")
    unit = chart.data.get("unit")
    ax.set_ylabel(label("axis_minutes" if unit == "minutes" else "axis_customers", lang))
    if unit != "minutes":
        _whole(ax)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()


def _stacked(fig: Any, chart: Chart, lang: str) -> None:
    ax = fig.add_subplot()
    x = chart.data["x"]
    bottom = [0] * len(x)
    for (key, values), colour in zip(chart.data["series"].items(), RATING_COLOURS,
                                     strict=True):
        ax.bar(range(len(x)), values, 0.6, bottom=bottom, color=colour,
               label=team("rep_rating", lang, n=key))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(range(len(x)), [str(v)[:18] for v in x])
    ax.set_ylabel(label("axis_ratings", lang))
    _whole(ax)
    ax.legend(loc="upper right", framealpha=0.9)
    ax.grid(axis="y", alpha=0.3)


def _heatmap(fig: Any, chart: Chart, lang: str) -> None:
    ax = fig.add_subplot()
    grid = chart.data["grid"]
    image = ax.imshow(grid, aspect="auto", cmap="YlOrRd")
    ax.set_yticks(range(7), [weekday(d, lang) for d in range(7)])
    ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)])
    ax.set_xlabel(team("rep_axis_hour", lang, zone=chart.data["timezone"]))
    bar = fig.colorbar(image, ax=ax, label=label("axis_messages", lang))
    from matplotlib.ticker import MaxNLocator

    bar.locator = MaxNLocator(integer=True)  # counts of messages: no 0.25 of one
    bar.update_ticks()


def _cohorts(fig: Any, chart: Chart, lang: str) -> None:
    ax = fig.add_subplot()
    grid = chart.data["grid"]
    values = [[float("nan") if v is None else v * 100 for v in row] for row in grid]
    image = ax.imshow(values, aspect="auto", cmap="Blues", vmin=0, vmax=100)
    small = len(grid) <= 14 and len(grid[0]) <= 14
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if small and v == v:  # not NaN
                ax.text(j, i, f"{v:.0f}%", ha="center", va="center", fontsize=8,
                        color="white" if v > 60 else "black")
    ax.set_yticks(range(len(grid)), chart.data["y"])
    ax.set_xticks(range(len(grid[0])), [f"+{k}" for k in range(len(grid[0]))])
    ax.set_xlabel(label("axis_months_after", lang))
    ax.set_ylabel(label("axis_cohort", lang))
    fig.colorbar(image, ax=ax, label=label("axis_retained", lang))


def _pareto(fig: Any, chart: Chart, lang: str) -> None:
    ax = fig.add_subplot(1, 2, 1)
    xs = [p[0] * 100 for p in chart.data["curve"]]
    ys = [p[1] * 100 for p in chart.data["curve"]]
    ax.plot(xs, ys, color="#1f77b4", linewidth=2)
    ax.plot([0, 100], [0, 100], color="#999999", linestyle=":", linewidth=1)
    ax.axhline(80, color="#d62728", linestyle="--", linewidth=1)
    share = chart.data.get("share_for_80")
    if share is not None:
        ax.axvline(share * 100, color="#d62728", linestyle="--", linewidth=1)
        ax.annotate(team("rep_pareto_mark", lang, share=f"{share * 100:.0f}"),
                    (share * 100, 80), xytext=(min(share * 100 + 4, 45), 45),
                    arrowprops={"arrowstyle": "->"}, fontsize=10)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 101)
    ax.set_xlabel(label("axis_share_customers", lang))
    ax.set_ylabel(label("axis_share_revenue", lang))
    ax.grid(alpha=0.3)
    segments = chart.data.get("segments") or {}
    right = fig.add_subplot(1, 2, 2)
    names = list(segments)
    bars = right.barh(range(len(names)), [segments[n] for n in names], color="#2ca02c")
    right.bar_label(bars, fontsize=8)
    right.set_yticks(range(len(names)), [label(f"segment_{n}", lang) for n in names])
    right.invert_yaxis()
    right.set_xlabel(label("axis_customers", lang))
    from matplotlib.ticker import MaxNLocator

    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_title(label("rfm_segments", lang), fontsize=11)
    fig.subplots_adjust(wspace=0.45, left=0.07, right=0.97)


DRAW = {"lines": _lines, "bars": _bars, "stacked": _stacked, "heatmap": _heatmap,
        "cohorts": _cohorts, "pareto": _pareto}
