"""The weekly digest: the overview of the last seven days, as a chart and a summary, to every
admin's private chat with the bot (`[reports] digest`, `digest_day`, `digest_time`,
`digest_timezone`).

It is a task row like any other (crm/tasks.py), keyed by the local date it is due: the
scheduler writes the next one (`ensure`, idempotent), the task fires once in the transaction
that marks it done, and firing writes the one after. So a restart loses none and sends none
twice; a digest more than a day late (the service was down) is skipped, not sent stale.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import structlog

from crm.events import TeamReport
from crm.i18n import team
from crm.models import Manager, Task
from crm.reports import charts, render
from crm.reports.period import Period
from crm.reports.reports import ReportName, Reports
from crm.tasks import Tasks, is_late
from crm.types import Role, TaskKind, TaskState

if TYPE_CHECKING:
    from crm.services import Core

log = structlog.get_logger(__name__)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LATE_LIMIT = timedelta(days=1)


def next_due(now: datetime, day: str, at: str, zone: ZoneInfo) -> datetime:
    """The first local `day` at `at` strictly after `now`, in UTC."""
    hour, minute = (int(p) for p in at.split(":"))
    local = now.astimezone(zone)
    date = local.date() + timedelta(days=(DAYS.index(day) - local.weekday()) % 7)
    for _ in range(3):
        due = datetime.combine(date, time(hour, minute), tzinfo=zone).astimezone(UTC)
        if due > now:
            return due
        date += timedelta(days=7)
    raise AssertionError("unreachable")  # pragma: no cover


class Digest:
    def __init__(self, core: Core, tasks: Tasks) -> None:
        self.core = core
        self.tasks = tasks
        self.settings = core.settings.reports
        self.reports = Reports(core.settings, core.clock)
        self.zone = ZoneInfo(self.settings.digest_timezone) if self.settings.digest_timezone \
            else self.reports.zone
        tasks.handle(TaskKind.REPORT_DIGEST, self._fire)

    async def ensure(self) -> Task | None:
        """The next digest's row (written once, whoever asks)."""
        if not self.settings.digest:
            return None
        due = next_due(self.core.clock(), self.settings.digest_day, self.settings.digest_time,
                       self.zone)
        local = due.astimezone(self.zone).date().isoformat()
        return await self.tasks.schedule(TaskKind.REPORT_DIGEST, due,
                                         key=f"report-digest:{local}")

    async def _fire(self, task: Task, now: datetime) -> TaskState:
        await self.ensure()
        if is_late(task, now, LATE_LIMIT):
            return TaskState.SKIPPED
        admins = await Manager.filter(role=Role.ADMIN, active=True).order_by("id")
        if not admins:
            return TaskState.SKIPPED
        period = Period(now - timedelta(days=7), now, self.reports.zone)
        report = await self.reports.run(ReportName.OVERVIEW, period)
        photos = {}
        for admin in admins:
            lang = admin.language or self.core.settings.team_language
            if lang not in photos:
                image = await charts.render(report, lang)
                photos[lang] = await asyncio.to_thread(
                    self.core.files.save, image, kind="photo", filename="overview.png",
                    mime_type="image/png")
            caption = f"{team('rep_digest_head', lang)}\n{render.summary(report, lang)}"
            await self.core.bus.emit(TeamReport(admin.id, photos[lang], caption,
                                                key=f"task:{task.id}:{admin.id}"))
        log.info("reports.digest_sent", admins=len(admins), empty=report.empty)
        return TaskState.DONE
