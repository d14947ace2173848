"""The weekly digest: one task row per week (idempotent, survives a restart), fired once, to
every admin in their language, skipped when a day late; the scheduler job writes the row."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from crm.events import TeamReport
from crm.models import Task
from crm.reports.digest import next_due
from crm.types import Role, TaskKind, TaskState
from tests.crm.reports.test_charts import png_size
from tests.support.automation import build, manager
from tests.support.clock import TravelClock
from tests.support.reports_data import seed

DIGEST = {"digest": True, "digest_day": "mon", "digest_time": "09:00",
          "digest_timezone": "Europe/Berlin"}


def test_next_due_is_the_next_local_weekday_and_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    sunday = datetime(2026, 3, 29, 12, tzinfo=UTC)  # summer time began that night
    assert next_due(sunday, "mon", "09:00", berlin) == datetime(2026, 3, 30, 7, tzinfo=UTC)
    monday_late = datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert next_due(monday_late, "mon", "09:00", berlin) == datetime(2026, 4, 6, 7, tzinfo=UTC)


async def test_the_digest_goes_once_to_each_admin(db: str) -> None:
    await seed()
    clock = TravelClock(datetime(2026, 3, 29, 12, tzinfo=UTC))
    core, auto = build(db, clock, reports=DIGEST)
    await manager("Adam", role=Role.ADMIN)
    rita = await manager("Rita", role=Role.ADMIN)
    rita.language = "ru"
    await rita.save()
    await manager("Bob")
    got: list[TeamReport] = []

    async def seen(event: TeamReport) -> None:
        got.append(event)

    core.bus.subscribe(TeamReport, seen)
    await auto.digest.ensure()
    await auto.digest.ensure()
    # A restart builds everything again: still one row.
    _, again = build(db, clock, reports=DIGEST)
    await again.digest.ensure()
    [row] = await Task.filter(kind=TaskKind.REPORT_DIGEST)
    assert row.due_at == datetime(2026, 3, 30, 7, tzinfo=UTC)

    clock.set(datetime(2026, 3, 30, 7, 0, 5, tzinfo=UTC))
    assert await auto.tasks.run_due() == 1
    assert await auto.tasks.run_due() == 0  # once
    assert len(got) == 2
    english, russian = sorted(got, key=lambda e: e.manager_id)
    assert english.caption.startswith("Weekly report\nOverview")
    assert russian.caption.startswith("Отчёт за неделю\nОбзор")
    assert english.photo.path
    assert png_size(Path(english.photo.path).read_bytes()) == (1200, 700)
    pending = await Task.filter(kind=TaskKind.REPORT_DIGEST, state=TaskState.PENDING)
    assert [t.due_at for t in pending] == [datetime(2026, 4, 6, 7, tzinfo=UTC)]

    # Down for two days: the week's digest is skipped, not sent stale; the next is written.
    clock.set(datetime(2026, 4, 8, 9, tzinfo=UTC))
    assert await auto.tasks.run_due() == 0 and len(got) == 2
    pending = await Task.filter(kind=TaskKind.REPORT_DIGEST, state=TaskState.PENDING)
    assert [t.due_at for t in pending] == [datetime(2026, 4, 13, 7, tzinfo=UTC)]


async def test_no_digest_unless_configured(db: str) -> None:
    _, auto = build(db, TravelClock())
    assert await auto.digest.ensure() is None
    assert not await Task.filter(kind=TaskKind.REPORT_DIGEST).exists()
