"""The campaign editor (marketers, admins): content per channel in up to three variants, the
channels in order of preference, the schedule with its time zone and quiet hours, the A/B test,
and beside it the preview as each channel shows it (web/console/campaign_preview.py).

As the marketer types, htmx posts the form to `/campaigns/preview`: the campaigns service
previews the campaign as written, nothing stored (`Campaigns.preview_draft`), for the chosen
customer of the segment. Saving is `crm campaigns create` (a draft, by the marketer) or, for a
draft, the same checks again (`Campaigns.update`); what is wrong is named by its field.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm.campaigns.service import CampaignPreview
from crm.errors import Conflict, CrmError, NotFound
from crm.models import Campaign
from crm.roles import Permission
from crm.types import CampaignState
from web.console.campaign_form import (
    BUTTONS,
    CHANNELS,
    METRICS,
    QUIET,
    VARIANTS,
    blank,
    from_spec,
    to_raw,
)
from web.console.campaign_preview import context as preview_context
from web.console.campaign_preview import with_mail_styles, zones
from web.console.guard import PATH, Visit, redirect, staff

VARIABLES = ("customer.name", "customer.first_name", "customer.language", "customer.tags",
             "customer.attributes", "customer.lead_source", "last_order.number",
             "last_order.status", "last_order.amount", "last_order.currency", "company",
             "campaign")


def campaign_id(visit: Visit) -> int:
    raw = visit.request.match_info["campaign_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound(f"campaign #{raw} does not exist")
    return int(raw)


def customer_of(value: object) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 13 else None


async def _page(visit: Visit, values: dict[str, Any], *, campaign: Campaign | None = None,
                preview: CampaignPreview | None = None, preview_error: str | None = None,
                error: str | None = None, status: int = 200) -> web.Response:
    segments = [s.name for s in await visit.core.segments.all()]
    spec = to_raw(values, campaign.spec if campaign else None)
    return with_mail_styles(visit.render("campaign_edit.html", {
        "v": values, "campaign": campaign, "segments": segments, "channels": CHANNELS,
        "variant_names": VARIANTS, "buttons": range(BUTTONS), "metrics": METRICS,
        "quiet_modes": QUIET, "zones": zones(), "variables": VARIABLES, "error": error,
        "default_quiet": visit.core.settings.campaigns.quiet_hours or "—",
        **preview_context(preview, spec, preview_error)}, status=status))


@staff(Permission.CAMPAIGNS)
async def new_campaign(visit: Visit) -> web.Response:
    values = blank(str(visit.request.query.get("segment", ""))[:64])
    return await _page(visit, values)


async def _draft(visit: Visit) -> Campaign | None:
    campaign = await visit.core.campaigns.get(campaign_id(visit))
    return campaign if campaign.state is CampaignState.DRAFT else None


@staff(Permission.CAMPAIGNS)
async def edit_campaign(visit: Visit) -> web.Response:
    campaign = await _draft(visit)
    if campaign is None:  # once scheduled, what goes out is what was previewed
        return redirect(f"{PATH}/campaigns/{campaign_id(visit)}")
    values = from_spec(campaign.spec)
    preview, problem = None, None
    try:
        preview = await visit.core.campaigns.preview_draft(to_raw(values, campaign.spec))
    except CrmError as e:
        problem = str(e)
    return await _page(visit, values, campaign=campaign, preview=preview,
                       preview_error=problem)


@staff(Permission.CAMPAIGNS)
async def preview(visit: Visit) -> web.Response:
    """The preview of the campaign as the form has it now (nothing stored)."""
    form = await visit.request.post()
    before = None
    if (cid := customer_of(form.get("campaign_id"))) is not None:
        before = (await visit.core.campaigns.get(cid)).spec
    raw = to_raw(form, before)
    found, problem = None, None
    try:
        found = await visit.core.campaigns.preview_draft(raw, customer_of(form.get("customer")))
    except CrmError as e:
        problem = str(e)
    return visit.render("campaign_preview.html", preview_context(found, raw, problem))


async def _saved(visit: Visit, campaign: Campaign | None) -> web.Response:
    form = await visit.request.post()
    values = {k: str(v) for k, v in form.items() if k != "csrf"}
    raw = to_raw(form, campaign.spec if campaign else None)
    try:
        if campaign is None:
            saved = await visit.core.campaigns.create(raw, actor=visit.actor, by=visit.manager)
        else:
            saved = await visit.core.campaigns.update(campaign.id, raw, actor=visit.actor,
                                                      by=visit.manager)
    except NotFound:
        raise
    except CrmError as e:
        found, problem = None, None
        try:
            found = await visit.core.campaigns.preview_draft(raw)
        except CrmError as again:
            problem = str(again)
        return await _page(visit, values, campaign=campaign, preview=found,
                           preview_error=problem, error=str(e),
                           status=409 if isinstance(e, Conflict) else 422)
    return redirect(f"{PATH}/campaigns/{saved.id}")


@staff(Permission.CAMPAIGNS)
async def create(visit: Visit) -> web.Response:
    return await _saved(visit, None)


@staff(Permission.CAMPAIGNS)
async def update(visit: Visit) -> web.Response:
    campaign = await _draft(visit)
    if campaign is None:
        raise Conflict(f"campaign #{campaign_id(visit)} is no longer a draft: it cannot be "
                       "changed")
    return await _saved(visit, campaign)
