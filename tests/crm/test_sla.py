"""Business-hours arithmetic: deadlines across nights, weekends, holidays and a DST change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm.config import parse_settings
from crm.errors import ConfigError
from crm.sla import BusinessHours, deadline, parse_ranges, reminder_time

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = {"mon": "09:00-18:00", "tue": "09:00-18:00", "wed": "09:00-13:00, 14:00-18:00",
        "thu": "09:00-18:00", "fri": "09:00-17:00"}
# Good Friday and Easter Monday 2026 are holidays.
HOURS = BusinessHours.build("Europe/Berlin", WEEK, [date(2026, 4, 3), date(2026, 4, 6)])


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN).astimezone(UTC)


def test_ranges_are_parsed_and_mistakes_explained() -> None:
    assert parse_ranges("09:00-13:00, 14:00-18:00") == ((540, 780), (840, 1080))
    assert parse_ranges("") == ()
    assert parse_ranges("00:00-24:00") == ((0, 1440),)
    with pytest.raises(ValueError, match="not a range"):
        parse_ranges("9 to 5")
    with pytest.raises(ValueError, match="passes midnight"):
        parse_ranges("22:00-02:00")
    with pytest.raises(ValueError, match="overlap"):
        parse_ranges("09:00-12:00,11:00-13:00")


def test_within_a_day() -> None:
    assert deadline(HOURS, local(2026, 3, 2, 10), 15) == local(2026, 3, 2, 10, 15)


def test_across_the_night() -> None:
    # Monday 17:50 + 15 business minutes: 10 today, 5 tomorrow morning.
    assert deadline(HOURS, local(2026, 3, 2, 17, 50), 15) == local(2026, 3, 3, 9, 5)
    # Written at 3 am: the clock starts at nine.
    assert deadline(HOURS, local(2026, 3, 3, 3), 15) == local(2026, 3, 3, 9, 15)


def test_across_the_lunch_break() -> None:
    assert deadline(HOURS, local(2026, 3, 4, 12, 50), 20) == local(2026, 3, 4, 14, 10)


def test_across_a_weekend_with_a_dst_change() -> None:
    # Friday 16:55 (closes 17:00), the clocks go forward on Sunday 29 March: Monday 09:10
    # Berlin is 07:10 UTC, not 08:10.
    due = deadline(HOURS, local(2026, 3, 27, 16, 55), 15)
    assert due == local(2026, 3, 30, 9, 10) == datetime(2026, 3, 30, 7, 10, tzinfo=UTC)


def test_across_easter_holidays() -> None:
    # Thursday 17:30 before Good Friday: 30 min Thursday, then Tuesday after Easter Monday.
    assert deadline(HOURS, local(2026, 4, 2, 17, 30), 45) == local(2026, 4, 7, 9, 15)
    assert not HOURS.is_open(local(2026, 4, 6, 11))
    assert HOURS.next_open(local(2026, 4, 3, 11)) == local(2026, 4, 7, 9)
    assert HOURS.is_open(local(2026, 4, 7, 11))


def test_a_managers_delay_counts_business_days_and_hours() -> None:
    friday = local(2026, 3, 6, 16)  # closes at 17:00
    assert HOURS.later(friday, timedelta(hours=2)) == local(2026, 3, 9, 10)
    assert HOURS.later(local(2026, 3, 6, 16, 50), timedelta(minutes=30)) == \
        local(2026, 3, 9, 9, 20)
    assert HOURS.later(friday, timedelta(days=1)) == local(2026, 3, 9, 16)  # a business day
    assert HOURS.later(friday, timedelta(days=2, hours=3)) == local(2026, 3, 11, 10)
    # Good Friday and Easter Monday are no business days; a week keeps the hour across DST.
    assert HOURS.later(local(2026, 4, 2, 11), timedelta(days=1)) == local(2026, 4, 7, 11)
    assert HOURS.later(local(2026, 3, 25, 10), timedelta(weeks=1)) == local(2026, 4, 1, 10)
    # Set after hours: a day later is the next open day's same hour, or when it opens.
    assert HOURS.later(local(2026, 3, 3, 20), timedelta(days=1)) == local(2026, 3, 5, 9)
    always = BusinessHours.build("UTC", {})
    saturday = datetime(2026, 3, 7, 3, tzinfo=UTC)
    assert always.later(saturday, timedelta(days=2)) == saturday + timedelta(days=2)


def test_business_time_between() -> None:
    assert HOURS.between(local(2026, 3, 6, 16), local(2026, 3, 9, 10)) == timedelta(hours=2)
    assert HOURS.between(local(2026, 3, 9, 10), local(2026, 3, 6, 16)) == timedelta(0)


def test_no_hours_means_around_the_clock() -> None:
    always = BusinessHours.build("UTC", {})
    at = datetime(2026, 3, 7, 3, tzinfo=UTC)  # a Saturday night
    assert always.is_open(at) and deadline(always, at, 15) == at + timedelta(minutes=15)


def test_reminder_never_in_the_past() -> None:
    now = local(2026, 3, 2, 10)
    assert reminder_time(now, now + timedelta(minutes=15), timedelta(minutes=5)) == \
        now + timedelta(minutes=10)
    assert reminder_time(now, now + timedelta(minutes=2), timedelta(minutes=5)) == now


def test_config_names_the_bad_key() -> None:
    with pytest.raises(ConfigError, match=r"\[sla\] hours: .*'9-5' is not a range"):
        parse_settings({"sla": {"hours": {"mon": "9-5"}}})
    with pytest.raises(ConfigError, match="funday"):
        parse_settings({"sla": {"hours": {"funday": "09:00-10:00"}}})
    with pytest.raises(ConfigError, match="closed on every day"):
        parse_settings({"sla": {"hours": {"mon": ""}}})
    with pytest.raises(ConfigError, match="time zone"):
        parse_settings({"sla": {"timezone": "Mars/Olympus"}})
