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
