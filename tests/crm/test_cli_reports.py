"""`crm reports` through the real command: table, CSV, JSON, the chart file, the rows behind a
figure, and clear errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.crm.reports.test_charts import png_size
from tests.crm.test_cli import crm
from tests.support.reports_data import seed


def config_file(db: str, tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db}"\n[routing]\nfirst_response_minutes = 5\n')
    return path


MARCH = ("--from", "2026-03-01", "--to", "2026-03-31")


async def test_reports_on_the_command_line(db: str, tmp_path: Path) -> None:
    await seed()
    config = config_file(db, tmp_path)
    table = crm(config, "reports", "overview", *MARCH).stdout
    assert "Overview, 2026-03-01 – 2026-03-31 (UTC)" in table
    assert "first response, median: 2 min (−2 min against 4 min)" in table
    assert "CSAT (4 and 5): 50%" in table
    ru = crm(config, "reports", "team", *MARCH, "--language", "ru").stdout
    assert "Команда — по менеджерам" in ru and "Olga" in ru and "1 мин 30 с" in ru
    data = json.loads(crm(config, "reports", "team", *MARCH, "--format", "json").stdout)
    rows = {r["group"]: r for r in data["tables"]["groups"]["rows"]}
    assert rows["Olga"]["first_response_median"] == 90 and data["by"] == "manager"
    by_tag = crm(config, "reports", "channels", *MARCH, "--by", "tag", "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(by_tag.stdout)))
    assert {r["group"]: r["first_response_median"] for r in parsed} == {
        "": "120.0", "vip": "330.0", "wholesale": "600.0"}
    chart = tmp_path / "pareto.png"
    done = crm(config, "reports", "customers", "--from", "2026-01-01", "--to", "2026-03-31",
               "--chart", str(chart))
    assert "share of customers making 80% of revenue: 50%" in done.stdout
    assert f"chart written to {chart}" in done.stderr
    assert png_size(chart.read_bytes()) == (1200, 700)
    drill = crm(config, "reports", "team", *MARCH, "--rows", "--group", "Ivan").stdout
    lines = list(csv.DictReader(io.StringIO(drill)))
    assert [(r["kind"], r["seconds"], r["within_sla"]) for r in lines] == [
        ("first_response", "600", "False")]
    segment = crm(config, "reports", "customers", "--period", "year", "--rows", "--group",
                  "champions", "--format", "json").stdout
    assert [r["customer"] for r in json.loads(segment)] == ["Ann"]


async def test_the_campaigns_report_equals_campaigns_stats(db: str, tmp_path: Path) -> None:
    seeded = await seed()
    config = config_file(db, tmp_path)
    chart = tmp_path / "campaigns.png"
    done = crm(config, "reports", "campaigns", *MARCH, "--chart", str(chart))
    assert "Campaigns, 2026-03-01 – 2026-03-31 (UTC)" in done.stdout
    assert "campaigns started: 2" in done.stdout and "opt-out rate: 40%" in done.stdout
    assert png_size(chart.read_bytes()) == (1200, 700)
    data = json.loads(crm(config, "reports", "campaigns", "--from", "2026-02-01", "--to",
                          "2026-03-31", "--format", "json").stdout)
    tables = data["tables"]
    assert len(tables["campaigns"]["rows"]) == 3  # Winter, Spring sale, Survey
    for row in tables["campaigns"]["rows"]:
        stats = json.loads(crm(config, "campaigns", "stats", str(row["campaign_id"]),
                               "--json").stdout)
        slices = [("total", row, stats["total"])]
        slices += [(f"channel {r['channel']}", r, stats["by_channel"][r["channel"] or "none"])
                   for r in tables["channels"]["rows"]
                   if r["campaign_id"] == row["campaign_id"]]
        slices += [(f"variant {r['variant']}", r, stats["by_variant"][r["variant"] or "none"])
                   for r in tables["variants"]["rows"]
                   if r["campaign_id"] == row["campaign_id"]]
        assert len(slices) == 1 + len(stats["by_channel"]) + len(stats["by_variant"])
        for where, mine, theirs in slices:
            for key in ("recipients", "sent", "delivered", "failed", "replied", "clicked",
                        "opted_out", "deferred"):
                assert mine[key] == theirs[key], (row["campaign"], where, key)
            assert mine["skipped"] == sum(theirs["skipped"].values())
            for reason, n in theirs["skipped"].items():
                assert mine[f"skipped_{reason}"] == n
    table = list(csv.DictReader(io.StringIO(crm(config, "reports", "campaigns", *MARCH,
                                                "--format", "csv").stdout)))
    assert table[0]["campaign"] == "Spring sale" and table[0]["reply_rate"].startswith("0.666")
    sale = seeded.campaigns["Spring sale"].id
    drill = crm(config, "reports", "campaigns", *MARCH, "--rows", "--group", str(sale)).stdout
    lines = list(csv.DictReader(io.StringIO(drill)))
    assert [r["customer"] for r in lines] == ["Ann", "Boris", "Vera", "Gleb", "Dina", "Egor"]
    assert [r["failure"] for r in lines if r["state"] == "failed"] == ["forbidden"]
    none = crm(config, "reports", "campaigns", "--period", "2026-01").stdout
    assert "No data for this period." in none


async def test_no_data_and_mistakes(db: str, tmp_path: Path) -> None:
    config = config_file(db, tmp_path)
    empty = crm(config, "reports", "csat", "--period", "7d").stdout
    assert "No data for this period." in empty
    bad = crm(config, "reports", "hours", "--by", "manager", ok=False)
    assert bad.returncode == 1 and "--by applies to overview, team, channels, csat" in bad.stderr
    when = crm(config, "reports", "overview", "--from", "March", ok=False)
    assert when.returncode == 1 and "--from 'March': not a date" in when.stderr
    both = crm(config, "reports", "overview", "--period", "7d", "--from", "2026-03-01",
               ok=False)
    assert both.returncode == 2 and "give --period or --from/--to, not both" in both.stderr
