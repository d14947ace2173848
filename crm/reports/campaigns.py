"""The campaigns report: what came of each campaign that started sending in the period, in
total, per channel and per variant, with rates.

The counts are those of `crm campaigns stats` for the same campaign: both come from
crm/campaigns/results.py `slices` (one grouped statement over the recipients), so they cannot
drift apart. A campaign belongs to the period in which it started sending, with all its
figures so far (a campaign is one decision; cutting its replies at the period's end would
make its rates depend on the day the report is read).

Rates are fractions, `None` ("no data") when there is nothing to divide by:
- reply rate, click rate: replies / sent, clicks / sent;
- opt-out rate: opt-outs / (sent + those who opted out before their message went, skipped);
- failure rate: failed / (sent + failed);
- delivery rate: of the messages sent on a channel that reports every delivery (SMS), the
  share with a delivery report; Telegram reports none and email only the odd DSN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sql
from crm.campaigns.results import Figures, Slices, reason_of, slices
from crm.reports.model import Chart, Column, Figure, Kind, Report, Rows, Table
from crm.reports.period import Period
from crm.types import SkipReason

DELIVERY_REPORTED = ("sms",)
COUNTS = ("recipients", "skipped", *(f"skipped_{r.value}" for r in SkipReason), "deferred",
          "sent", "delivered", "failed", "replied", "clicked", "opted_out")
RATES = ("delivery_rate", "failure_rate", "reply_rate", "click_rate", "opt_out_rate")
# The headline, in the order the managers' chat shows the first nine.
HEADLINE = ("campaigns", "recipients", "sent", "replied", "reply_rate", "clicked",
            "click_rate", "opted_out", "opt_out_rate", "skipped", "deferred", "delivered",
            "delivery_rate", "failed", "failure_rate")
CHART_SERIES = ("sent", "replied", "clicked", "opted_out")
CHART_CAMPAIGNS = 10  # the latest; every one is in the tables


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def measure(parts: Iterable[tuple[str, Figures]]) -> dict[str, Any]:
    """The counts and rates of some slices of campaigns, each given with its channel."""
    f = Figures()
    reported_sent = reported_delivered = 0
    for channel, part in parts:
        f.add(part)
        if channel in DELIVERY_REPORTED:
            reported_sent += part.sent
            reported_delivered += part.delivered
    opted_first = f.skipped.get(SkipReason.OPTED_OUT.value, 0)
    return {
        "recipients": f.recipients, "skipped": sum(f.skipped.values()),
        **{f"skipped_{r.value}": f.skipped.get(r.value, 0) for r in SkipReason},
        "deferred": f.deferred, "sent": f.sent, "delivered": f.delivered, "failed": f.failed,
        "replied": f.replied, "clicked": f.clicked, "opted_out": f.opted_out,
        "delivery_rate": _share(reported_delivered, reported_sent),
        "failure_rate": _share(f.failed, f.sent + f.failed),
        "reply_rate": _share(f.replied, f.sent), "click_rate": _share(f.clicked, f.sent),
        "opt_out_rate": _share(f.opted_out, f.sent + opted_first)}


@dataclass(frozen=True, slots=True)
class Started:
    id: int
    name: str
    state: str
    started_at: datetime
    winner: str | None


async def started(conn: BaseDBAsyncClient, period: Period) -> list[Started]:
    rows = await sql.fetch(conn, "SELECT id, name, state, started_at, winner FROM campaign "
                                 "WHERE started_at >= ? AND started_at < ? "
                                 "ORDER BY started_at, id", [period.start, period.end])
    return [Started(int(r["id"]), str(r["name"]), str(r["state"]),
                    sql.as_datetime(r["started_at"]) or period.start, r["winner"])
            for r in rows]


def _columns(first: tuple[str, ...], rest: tuple[str, ...]) -> tuple[Column, ...]:
    return (*(Column(k, Kind.TEXT) for k in first),
            *(Column(k, Kind.SHARE if k in RATES else Kind.COUNT) for k in rest))


# What a person reads in each table (CSV and JSON have every count and rate).
CAMPAIGN_COLUMNS = _columns(("campaign", "state"), (
    "recipients", "skipped", "sent", "delivered", "failed", "replied", "reply_rate", "clicked",
    "click_rate", "opted_out", "opt_out_rate"))
CHANNEL_COLUMNS = _columns(("campaign", "channel"), (
    "recipients", "skipped", "sent", "delivered", "delivery_rate", "failed", "failure_rate",
    "replied", "reply_rate", "clicked", "opted_out"))
VARIANT_COLUMNS = _columns(("campaign", "variant"), (
    "recipients", "sent", "replied", "reply_rate", "clicked", "click_rate", "opted_out",
    "opt_out_rate"))


def _by(parts: Slices, index: int) -> dict[str, list[tuple[str, Figures]]]:
    """A campaign's slices by channel (index 0) or variant (1), each with its channel."""
    out: dict[str, list[tuple[str, Figures]]] = {}
    for key, f in sorted(parts.items()):
        out.setdefault(key[index], []).append((key[0], f))
    return out


async def report(conn: BaseDBAsyncClient, period: Period) -> Report:
    found = await started(conn, period)
    figures = await slices(conn, [c.id for c in found])
    every: list[tuple[str, Figures]] = []
    campaigns, channels, variants = [], [], []
    for c in found:
        parts = figures[c.id]
        head = {"campaign_id": c.id, "campaign": c.name}
        tagged = [(channel, f) for (channel, _variant), f in sorted(parts.items())]
        every += tagged
        campaigns.append({**head, "state": c.state, "started_at": c.started_at.isoformat(),
                          "winner": c.winner, **measure(tagged)})
        channels += [{**head, "channel": k, **measure(v)} for k, v in _by(parts, 0).items()]
        variants += [{**head, "variant": k, **measure(v)} for k, v in _by(parts, 1).items()]
    total = measure(every)
    total["campaigns"] = len(found)
    heads = tuple(Figure(k, Kind.COUNT if k == "campaigns" or k in COUNTS else Kind.SHARE,
                         total[k], compared=False) for k in HEADLINE)
    latest = campaigns[-CHART_CAMPAIGNS:]
    chart = Chart("bars", "chart_campaigns", {
        "x": [r["campaign"] for r in latest],
        "series": {k: [r[k] for r in latest] for k in CHART_SERIES}})
    return Report("campaigns", period, heads, (
        Table("campaigns", CAMPAIGN_COLUMNS, tuple(campaigns)),
        Table("channels", CHANNEL_COLUMNS, tuple(channels)),
        Table("variants", VARIANT_COLUMNS, tuple(variants))), chart)


def _iso(value: object) -> str | None:
    at = sql.as_datetime(value)
    return at.isoformat() if at else None


ROW_COLUMNS = (
    Column("campaign_id", Kind.COUNT), Column("campaign", Kind.TEXT),
    Column("customer_id", Kind.COUNT), *(Column(k, Kind.TEXT) for k in (
        "customer", "channel", "variant", "state", "skip_reason", "deferred", "sent_at",
        "delivered_at", "failed_at", "failure", "replied_at", "clicked_at", "opted_out_at")))


async def rows(conn: BaseDBAsyncClient, period: Period, only: str | None = None) -> Rows:
    """The recipients behind the figures, campaign by campaign; `only`: one campaign's, by
    its number (12 or #12) or its name."""
    found = await started(conn, period)
    if only is not None:
        want = only.strip().lower()
        found = [c for c in found if want in (str(c.id), f"#{c.id}", c.name.strip().lower())]
    if not found:
        return Rows(ROW_COLUMNS, [])
    names = {c.id: c.name for c in found}
    out = await sql.fetch(conn, f"""
        SELECT r.campaign_id, r.customer_id, cu.name AS customer, r.channel, r.variant,
               r.state, r.skip_reason, r.deferred, r.sent_at, r.delivered_at, r.failed_at,
               r.error, r.replied_at, r.clicked_at, r.opted_out_at
        FROM campaign_recipient r JOIN customer cu ON cu.id = r.customer_id
        WHERE r.campaign_id IN ({sql.placeholders(len(found))})
        ORDER BY r.campaign_id, r.id""", [c.id for c in found])
    order = {c.id: n for n, c in enumerate(found)}
    for r in out:
        r["campaign"] = names[int(r["campaign_id"])]
        r["deferred"] = bool(r["deferred"])
        # The failure's kind only: an error may hold an address.
        error = r.pop("error")
        r["failure"] = reason_of(error) if r["state"] == "failed" else None
        for key in ("sent_at", "delivered_at", "failed_at", "replied_at", "clicked_at",
                    "opted_out_at"):
            r[key] = _iso(r[key])
    out.sort(key=lambda r: order[int(r["campaign_id"])])
    return Rows(ROW_COLUMNS, out)
