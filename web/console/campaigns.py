"""Campaigns (marketers, admins): the list with each campaign's state and progress, one
campaign with its preview for a customer of its segment, and what makes it reach customers:
the test send to the marketer's own identity (their Telegram chat, their email address), the
schedule (a time in a time zone, or now), pause, resume and cancel. Each is the campaigns
service `crm campaigns test|schedule|pause|resume|cancel` and the API call, with the marketer
as who did it; a lead or a manager is refused by the console's guard before it.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from crm.campaigns.service import parse_at
from crm.campaigns.spec import CampaignSpec
from crm.errors import Conflict, CrmError, InvalidField, NotFound
from crm.models import Campaign
from crm.roles import Permission
from crm.settings_campaigns import check_zone
from crm.types import CampaignState, Channel
from web.console.campaign_editor import campaign_id, customer_of
from web.console.campaign_preview import context as preview_context
from web.console.campaign_preview import with_mail_styles, zones
from web.console.guard import PATH, Visit, redirect, staff

# The buttons a campaign in each state shows (the service says what may be done: a button
# shown at the wrong moment is refused by it, with the reason).
BUTTONS = {
    CampaignState.DRAFT: ("edit", "test", "schedule", "cancel"),
    CampaignState.SCHEDULED: ("test", "schedule", "pause", "cancel"),
    CampaignState.MISSED: ("test", "schedule", "resume", "cancel"),
    CampaignState.SENDING: ("pause", "cancel"),
    CampaignState.PAUSED: ("test", "resume", "cancel"),
    CampaignState.CANCELLED: (),
    CampaignState.FINISHED: (),
}
LIVE = (CampaignState.SCHEDULED, CampaignState.SENDING)
DONE = ("tested", "scheduled", "paused", "resumed", "cancelled")


@staff(Permission.CAMPAIGNS)
async def campaigns_page(visit: Visit) -> web.Response:
    rows: list[dict[str, Any]] = []
    for c in await visit.core.campaigns.all(50):
        stats = await visit.core.campaigns.stats(c.id)
        rows.append({"c": c, "sent": stats.total.sent, "recipients": stats.total.recipients,
                     "buttons": BUTTONS[c.state]})
    done = visit.request.query.get("done")
    partial = visit.request.query.get("part") == "list"
    return visit.render("campaign_list.html" if partial else "campaigns.html", {
        "rows": rows, "done": done if done in DONE else None,
        "live": any(r["c"].state in LIVE for r in rows)})


async def _context(visit: Visit, campaign: Campaign) -> dict[str, Any]:
    customer = customer_of(visit.request.query.get("customer"))
    found, problem = None, None
    try:
        found = await visit.core.campaigns.preview(campaign.id, customer)
    except CrmError as e:
        problem = str(e)
    spec = CampaignSpec.model_validate(campaign.spec)
    segment = None
    if campaign.segment_id is not None:
        try:
            segment = await visit.core.segments.get(campaign.segment_id)
        except NotFound:
            segment = None
    done = visit.request.query.get("done")
    return {
        "campaign": campaign, "spec": spec, "segment": segment,
        "stats": await visit.core.campaigns.stats(campaign.id),
        "buttons": BUTTONS[campaign.state], "done": done if done in DONE else None,
        "zones": zones(), "error": None, "live": campaign.state in LIVE,
        **preview_context(found, campaign.spec, problem)}


@staff(Permission.CAMPAIGNS)
async def campaign_page(visit: Visit) -> web.Response:
    campaign = await visit.core.campaigns.get(campaign_id(visit))
    return with_mail_styles(visit.render("campaign.html", await _context(visit, campaign)))


def _at(form: Any) -> Any:
    """The time to schedule at, in the zone the marketer picked (None: the campaign's own
    time, or now)."""
    text = str(form.get("at", "")).strip()
    if not text:
        return None
    at = parse_at(text)
    if at.tzinfo is None:
        try:
            zone = check_zone(str(form.get("timezone", "")).strip() or "UTC")
        except ValueError as e:
            raise InvalidField("timezone", str(e)) from None
        at = at.replace(tzinfo=ZoneInfo(zone))
    return at


async def _act(visit: Visit, done: str) -> web.Response:
    cid = campaign_id(visit)
    form = await visit.request.post()
    campaigns, me, actor = visit.core.campaigns, visit.manager, visit.actor
    try:
        if done == "tested":
            # The marketer's own identity: their Telegram chat (if they have one) shows every
            # channel as it reads; the email goes for real to their address.
            await campaigns.test(cid, me, {Channel.EMAIL: me.email} if me.email else None)
        elif done == "scheduled":
            await campaigns.schedule(cid, _at(form), actor=actor, by=me)
        elif done == "paused":
            await campaigns.pause(cid, actor=actor, by=me)
        elif done == "resumed":
            await campaigns.resume(cid, actor=actor, by=me)
        else:
            await campaigns.cancel(cid, actor=actor, by=me)
    except NotFound:
        raise
    except CrmError as e:
        context = await _context(visit, await campaigns.get(cid))
        context["error"] = str(e)
        return with_mail_styles(visit.render(
            "campaign.html", context, status=409 if isinstance(e, Conflict) else 422))
    back = str(form.get("back", ""))
    to = f"{PATH}/campaigns" if back == "list" else f"{PATH}/campaigns/{cid}"
    return redirect(f"{to}?done={done}")


@staff(Permission.CAMPAIGN_SCHEDULE)
async def test(visit: Visit) -> web.Response:
    return await _act(visit, "tested")


@staff(Permission.CAMPAIGN_SCHEDULE)
async def schedule(visit: Visit) -> web.Response:
    return await _act(visit, "scheduled")


@staff(Permission.CAMPAIGN_SCHEDULE)
async def pause(visit: Visit) -> web.Response:
    return await _act(visit, "paused")


@staff(Permission.CAMPAIGN_SCHEDULE)
async def resume(visit: Visit) -> web.Response:
    return await _act(visit, "resumed")


@staff(Permission.CAMPAIGN_SCHEDULE)
async def cancel(visit: Visit) -> web.Response:
    return await _act(visit, "cancelled")
