"""The campaigns report on the hand-worked dataset (tests/support/reports_data.py), on both
databases: its figures by hand, equal to `crm campaigns stats` campaign by campaign, the
recipients behind them, and "no data" for a period without campaigns."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crm.campaigns.results import Figures, stats
from crm.reports import render
from crm.reports.period import between
from crm.reports.reports import ReportName, Reports
from tests.conftest import make_settings
from tests.support.reports_data import NOW, seed

UTC = ZoneInfo("UTC")
MARCH = between("2026-03-01", "2026-03-31", NOW, UTC)
JANUARY = between("2026-01-01", "2026-01-31", NOW, UTC)
COUNTS = ("recipients", "sent", "delivered", "failed", "replied", "clicked", "opted_out",
          "deferred")


@pytest.fixture
def reports(db: str) -> Reports:
    return Reports(make_settings(db), clock=lambda: NOW)


async def test_the_campaigns_of_march_by_hand(reports: Reports) -> None:
    await seed()
    report = await reports.run(ReportName.CAMPAIGNS, MARCH)
    f = {x.key: x.value for x in report.figures}
    # Spring sale and Survey; Winter started in February, the draft never did.
    assert f == {"campaigns": 2, "recipients": 8, "sent": 4, "replied": 2, "reply_rate": 0.5,
                 "clicked": 2, "click_rate": 0.5, "opted_out": 2, "opt_out_rate": 0.4,
                 "skipped": 2, "deferred": 1, "delivered": 2, "delivery_rate": 1.0,
                 "failed": 1, "failure_rate": 0.2}
    sale, survey = report.table("campaigns").rows
    assert (sale["campaign"], sale["state"], sale["winner"]) == ("Spring sale", "finished", "A")
    assert (sale["skipped_no_consent"], sale["skipped_opted_out"]) == (1, 1)
    assert sale["reply_rate"] == pytest.approx(2 / 3) and sale["opt_out_rate"] == 0.5
    assert sale["failure_rate"] == 0.25 and sale["delivery_rate"] == 1.0
    # Survey: one queued, one mail sent and reported delivered (a DSN): no SMS, so no
    # delivery rate; nothing came back yet, which is 0%, not "no data".
    assert (survey["recipients"], survey["sent"], survey["delivered"]) == (2, 1, 1)
    assert survey["delivery_rate"] is None and survey["reply_rate"] == 0.0
    channels = {(r["campaign"], r["channel"]): r for r in report.table("channels").rows}
    assert set(channels) == {("Spring sale", c) for c in ("", "email", "sms", "telegram")} | {
        ("Survey", "email"), ("Survey", "telegram")}
    sms = channels["Spring sale", "sms"]
    assert (sms["recipients"], sms["sent"], sms["skipped_opted_out"], sms["opted_out"]) == (
        2, 1, 1, 1)
    assert channels["Spring sale", "telegram"]["failure_rate"] == 0.5
    assert channels["Spring sale", "telegram"]["delivery_rate"] is None  # Telegram tells none
    variants = {(r["campaign"], r["variant"]): r for r in report.table("variants").rows}
    a, b = variants["Spring sale", "A"], variants["Spring sale", "B"]
    assert (a["recipients"], a["sent"], a["replied"], a["clicked"]) == (4, 2, 2, 1)
    assert (b["recipients"], b["sent"], b["failed"], b["opted_out"]) == (2, 1, 1, 1)
    assert b["opt_out_rate"] == 1.0 and a["reply_rate"] == 1.0
    assert report.chart is not None and report.chart.data == {
        "x": ["Spring sale", "Survey"],
        "series": {"sent": [3, 1], "replied": [2, 0], "clicked": [2, 0], "opted_out": [2, 0]}}
    text = render.to_text(report, "en")
    assert "reply rate: 50%" in text and "delivery rate (SMS): 100%" in text
    assert "finished" in text and "(none)" in text  # Dina's row: skipped before a channel
    ru = render.to_text(report, "ru")
    assert "Рассылки" in ru and "доля ответов: 50%" in ru and "завершена" in ru


def _same(figures: Figures, row: dict[str, Any]) -> None:
    for key in COUNTS:
        assert row[key] == getattr(figures, key), key
    assert row["skipped"] == sum(figures.skipped.values())
    for reason, n in figures.skipped.items():
        assert row[f"skipped_{reason}"] == n


async def test_each_campaign_equals_its_stats(reports: Reports) -> None:
    seeded = await seed()
    report = await reports.run(ReportName.CAMPAIGNS, between("2026-02-01", "2026-03-31",
                                                             NOW, UTC))
    rows = report.table("campaigns").rows
    assert [r["campaign"] for r in rows] == ["Winter", "Spring sale", "Survey"]
    for row in rows:
        s = await stats(row["campaign_id"])
        _same(s.total, row)
        for r in report.table("channels").rows:
            if r["campaign_id"] == row["campaign_id"]:
                _same(s.by_channel[r["channel"]], r)
        for r in report.table("variants").rows:
            if r["campaign_id"] == row["campaign_id"]:
                _same(s.by_variant[r["variant"]], r)
        assert len(s.by_channel) == len([r for r in report.table("channels").rows
                                         if r["campaign_id"] == row["campaign_id"]])
    assert seeded.campaigns["Draft"].id not in {r["campaign_id"] for r in rows}


async def test_the_recipients_behind_the_figures(reports: Reports) -> None:
    seeded = await seed()
    every = await reports.rows(ReportName.CAMPAIGNS, MARCH)
    assert [(r["campaign"], r["customer"]) for r in every.rows] == [
        ("Spring sale", name) for name in ("Ann", "Boris", "Vera", "Gleb", "Dina", "Egor")
    ] + [("Survey", "Ann"), ("Survey", "Boris")]
    sale = seeded.campaigns["Spring sale"].id
    for only in ("spring SALE", str(sale), f"#{sale}"):
        mine = await reports.rows(ReportName.CAMPAIGNS, MARCH, only=only)
        assert {r["campaign_id"] for r in mine.rows} == {sale} and len(mine.rows) == 6
    gleb = next(r for r in every.rows if r["customer"] == "Gleb")
    # The failure's kind, never the error's detail (it may hold an address).
    assert gleb["failure"] == "forbidden" and gleb["state"] == "failed"
    csv = render.rows_csv(every)
    assert csv.splitlines()[0].startswith("campaign_id,campaign,customer_id,customer,channel")
    assert "1004" not in csv
    winter = await reports.rows(ReportName.CAMPAIGNS, MARCH, only="Winter")
    assert winter.rows == []  # started in February


async def test_a_period_without_campaigns_says_no_data(reports: Reports) -> None:
    await seed()
    report = await reports.run(ReportName.CAMPAIGNS, JANUARY)
    assert report.empty and render.to_json(report)["no_data"] is True
    f = {x.key: x.value for x in report.figures}
    assert f["campaigns"] == 0 and f["reply_rate"] is None and f["delivery_rate"] is None
    assert "No data for this period." in render.to_text(report, "en")
