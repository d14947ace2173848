"""The marketers' wizard in a private chat with the bot: `/campaign` and `/campaigns`.

`/campaign` walks through the segment, the channels (in order of preference), the text
(Telegram's HTML, with the variables of crm/campaigns/render.py), a preview, a test send to the
marketer and the schedule; each step is a reply. Where the wizard is lives in a `Cursor` row per
manager, so a restart in between loses nothing. `/campaigns` lists the latest with their state
and results. Only marketers and admins create and schedule (crm/campaigns/service.py says so);
the campaigns themselves are made by the same service as the CLI's and the API's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from channels.telegram.text import escape
from crm.campaigns.service import MARKETING_ROLES, parse_at
from crm.errors import CrmError
from crm.i18n import team
from crm.models import Cursor, Manager
from crm.templates import to_plain

if TYPE_CHECKING:
    from bot.desk import Desk, Where

CHANNELS = ("telegram", "email", "sms")


def _key(manager: Manager) -> str:
    return f"wizard.campaign:{manager.id}"


async def _state(manager: Manager) -> dict[str, Any] | None:
    row = await Cursor.get_or_none(name=_key(manager))
    return dict(row.value) if row is not None else None


async def _save(manager: Manager, state: dict[str, Any]) -> None:
    if not await Cursor.filter(name=_key(manager)).update(value=state):
        await Cursor.create(name=_key(manager), value=state)


async def _end(manager: Manager) -> None:
    await Cursor.filter(name=_key(manager)).delete()


async def active(manager: Manager) -> bool:
    return await Cursor.filter(name=_key(manager)).exists()


async def start(desk: Desk, manager: Manager, where: Where) -> None:
    """`/campaign`: the first step, the segment."""
    if not await _allowed(desk, manager, where):
        return
    segments = await desk.core.segments.all()
    if not segments:
        await desk.say(where, team("wizard_no_segments", where.lang))
        return
    lines = [team("wizard_segment", where.lang)]
    for n, segment in enumerate(segments[:20], 1):
        count = (await desk.core.segments.preview(segment.filters)).count
        lines.append(f"{n}. {segment.name} ({count})")
    await _save(manager, {"step": "segment", "segments": [s.name for s in segments[:20]]})
    await desk.say(where, "\n".join(lines))


async def answer(desk: Desk, manager: Manager, where: Where, text: str) -> None:
    """The marketer's reply to the step the wizard is at."""
    state = await _state(manager)
    if state is None:
        return
    text = text.strip()
    step = state.get("step")
    if step == "segment":
        names: list[str] = state.get("segments", [])
        chosen = names[int(text) - 1] if text.isdigit() and 0 < int(text) <= len(names) \
            else text if text in names else None
        if chosen is None:
            await desk.say(where, team("wizard_segment_again", where.lang))
            return
        await _save(manager, {**state, "step": "channels", "segment": chosen})
        await desk.say(where, team("wizard_channels", where.lang))
    elif step == "channels":
        words = [w.strip(",").lower() for w in text.split()]
        if not words or any(w not in CHANNELS for w in words) or len(set(words)) != len(words):
            await desk.say(where, team("wizard_channels_again", where.lang))
            return
        await _save(manager, {**state, "step": "text", "channels": words})
        await desk.say(where, team("wizard_text", where.lang))
    elif step == "text":
        await _create(desk, manager, where, state, text)
    elif step == "schedule":
        await _schedule(desk, manager, where, state, text)


async def _create(desk: Desk, manager: Manager, where: Where, state: dict[str, Any],
                  text: str) -> None:
    plain = to_plain(text)
    name = (plain.splitlines() or ["Campaign"])[0][:60] or "Campaign"
    content = {"telegram": {"text": text}, "email": {"subject": name, "text": plain,
                                                     "html": text},
               "sms": {"text": plain}}
    spec = {"name": name, "segment": state["segment"], "channels": state["channels"],
            **{c: content[c] for c in state["channels"]}}
    try:
        campaign = await desk.core.campaigns.create(spec, actor=f"manager:{manager.id}",
                                                    by=manager)
    except CrmError as e:
        await desk.say(where, f"⚠️ {e}")
        return
    preview = await desk.core.campaigns.preview(campaign.id)
    reach = ", ".join(f"{k} {v}" for k, v in preview.reach.items())
    lines = [team("wizard_preview", where.lang, id=campaign.id, count=preview.segment.count,
                  reach=reach)]
    for sample in preview.samples:
        extra = f" · {sample.sms_segments} SMS ({sample.sms_encoding})" \
            if sample.sms_segments else ""
        lines.append(f"<b>{escape(sample.channel)}{escape(extra)}</b>\n"
                     f"{escape(sample.text)}")
    if preview.stars is not None:
        lines.append(escape(team("wizard_stars", where.lang, stars=f"{preview.stars:g}")))
    lines.append(escape(team("wizard_schedule", where.lang)))
    await _save(manager, {**state, "step": "schedule", "campaign_id": campaign.id})
    await desk.say(where, "\n\n".join(lines), html=True)


async def _schedule(desk: Desk, manager: Manager, where: Where, state: dict[str, Any],
                    text: str) -> None:
    campaign_id = int(state["campaign_id"])
    word = text.lower()
    try:
        if word in ("test", "тест"):
            await desk.core.campaigns.test(campaign_id, manager)
            await desk.say(where, team("wizard_tested", where.lang))
            return
        at = None if word in ("now", "сейчас") else parse_at(text)
        campaign = await desk.core.campaigns.schedule(campaign_id, at,
                                                      actor=f"manager:{manager.id}",
                                                      by=manager)
    except CrmError as e:
        await desk.say(where, f"⚠️ {e}")
        return
    await _end(manager)
    when = f"{campaign.start_at:%Y-%m-%d %H:%M} UTC" if campaign.start_at else "now"
    await desk.say(where, team("wizard_scheduled", where.lang, id=campaign.id, at=when))


async def cancel(desk: Desk, manager: Manager, where: Where) -> None:
    state = await _state(manager)
    if state is None:
        return
    if state.get("campaign_id"):
        await desk.core.campaigns.cancel(int(state["campaign_id"]),
                                         actor=f"manager:{manager.id}", by=manager)
    await _end(manager)
    await desk.say(where, team("wizard_cancelled", where.lang))


async def listing(desk: Desk, manager: Manager, where: Where) -> None:
    """`/campaigns`: the latest ten, state and results."""
    campaigns = await desk.core.campaigns.all(10)
    if not campaigns:
        await desk.say(where, team("campaigns_none", where.lang))
        return
    lines = []
    for c in campaigns:
        s = (await desk.core.campaigns.stats(c.id)).total
        lines.append(team("campaigns_line", where.lang, id=c.id, name=c.name,
                          state=c.state.value, sent=s.sent, total=s.recipients,
                          failed=s.failed, replied=s.replied, clicked=s.clicked,
                          opted_out=s.opted_out))
    await desk.say(where, "\n".join(lines))


async def _allowed(desk: Desk, manager: Manager, where: Where) -> bool:
    if manager.role not in MARKETING_ROLES:
        await desk.say(where, team("wizard_not_allowed", where.lang))
        return False
    if desk.group is not None and where.chat_id == desk.group:
        await desk.say(where, team("wizard_private", where.lang))
        return False
    return True
