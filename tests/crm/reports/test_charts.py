"""Charts render to valid PNGs of the size asked, in English and Russian, for every report."""

from __future__ import annotations

import struct
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crm.reports import charts
from crm.reports.period import between
from crm.reports.reports import ReportName, Reports
from tests.conftest import make_settings
from tests.support.reports_data import NOW, seed

Q1 = between("2026-01-01", "2026-03-31", NOW, ZoneInfo("UTC"))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_every_chart_is_a_png_of_the_expected_size(db: str, lang: str,
                                                         tmp_path: Path) -> None:
    await seed()
    reports = Reports(make_settings(db), clock=lambda: NOW)
    for name in ReportName:
        report = await reports.run(name, Q1)
        image = await charts.render(report, lang)
        assert png_size(image) == (charts.WIDTH, charts.HEIGHT), name
        assert len(image) > 20_000, name  # drawn, not a blank page
        (tmp_path / f"{name.value}-{lang}.png").write_bytes(image)
    small = charts.png(await reports.run(ReportName.HOURS, Q1), lang, 640, 480)
    assert png_size(small) == (640, 480)
