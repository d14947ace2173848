"""`/report [name] [period]` in the managers' chat: the report's chart as a photo with a short
summary, for admins and leads (crm/reports). In the reader's language."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from crm.i18n import team
from crm.models import Manager
from crm.reports import charts, render
from crm.reports.period import parse_period
from crm.reports.reports import ReportName, Reports, report_name
from crm.types import Role

if TYPE_CHECKING:
    from bot.desk import Desk, Where

ALLOWED = (Role.ADMIN, Role.LEAD)


async def report(desk: Desk, manager: Manager, where: Where, args: str) -> None:
    if manager.role not in ALLOWED:
        await desk.say(where, team("rep_not_allowed", where.lang))
        return
    words = args.split()
    if len(words) > 2 or (words and words[0].lower() in ("help", "?")):
        await desk.say(where, team("rep_usage", where.lang))
        return
    core = desk.core
    reports = Reports(core.settings, core.clock)
    name = ReportName.OVERVIEW
    if words and words[0].lower() in {n.value for n in ReportName}:
        name = report_name(words.pop(0))
    # What is left is the period; a word that is neither says how to write one.
    period = parse_period(words[0], core.clock(), reports.zone) if words else None
    result = await reports.run(name, period)
    caption = render.summary(result, where.lang)
    if result.empty:
        await desk.say(where, caption)
        return
    image = await charts.render(result, where.lang)
    photo = await asyncio.to_thread(core.files.save, image, kind="photo",
                                    filename=f"{name.value}.png", mime_type="image/png")
    await desk.mirror.send_file(where.chat_id, where.thread_id, photo, caption, key=where.key)
