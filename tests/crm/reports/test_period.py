"""Periods: spans, months, days included whole, in the team's time zone; mistakes explained."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crm.reports.period import BadPeriod, between, parse_period

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
MOSCOW = ZoneInfo("Europe/Moscow")


def test_spans_and_words() -> None:
    week = parse_period("7d", NOW, MOSCOW)
    assert (week.start, week.end) == (datetime(2026, 3, 24, 12, tzinfo=UTC), NOW)
    assert week.previous.end == week.start and week.previous.length == week.length
    today = parse_period("today", NOW, MOSCOW)
    assert today.start == datetime(2026, 3, 30, 21, tzinfo=UTC)  # Moscow midnight
    yesterday = parse_period("yesterday", NOW, MOSCOW)
    assert yesterday.end == today.start


def test_months_and_days_in_the_teams_zone() -> None:
    march = parse_period("2026-03", NOW, MOSCOW)
    assert march.start == datetime(2026, 2, 28, 21, tzinfo=UTC)
    assert march.end == datetime(2026, 3, 31, 21, tzinfo=UTC)
    assert march.label() == "2026-03-01 – 2026-03-31"
    span = parse_period("2026-03-01..2026-03-02", NOW, MOSCOW)
    assert span.length.days == 2  # both days whole
    assert between("2026-03-01", "2026-03-01", NOW, MOSCOW).length.days == 1


def test_mistakes_are_explained() -> None:
    with pytest.raises(BadPeriod, match="is not a period: use 7d"):
        parse_period("lately", NOW, MOSCOW)
    with pytest.raises(BadPeriod, match="not a month"):
        parse_period("2026-13", NOW, MOSCOW)
    with pytest.raises(BadPeriod, match="--from '1 March': not a date"):
        between("1 March", None, NOW, MOSCOW)
    with pytest.raises(BadPeriod, match="the period is empty"):
        between("2026-03-05", "2026-03-01", NOW, MOSCOW)
