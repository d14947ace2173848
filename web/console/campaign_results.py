"""A campaign's results (marketers, admins): the figures per channel and per variant, and the
charts: the delivery funnel per channel and per variant, sends, replies, clicks and opt-outs
over time, drawn in the browser (Chart.js, web/static/console/campaigns.js).

The figures are `crm campaigns stats` (crm/campaigns/results.py), the same as the API's
`GET /api/v1/campaigns/{id}/stats`: `/campaigns/{id}/data` answers exactly that JSON under
`stats`, beside `activity` (crm/campaigns/activity.py) for the chart over time. While the
campaign is scheduled or sending, htmx asks for the figures again every two seconds and the
script draws the charts again after each.
"""

from __future__ import annotations

from aiohttp import web

from crm.roles import Permission
from crm.types import CampaignState
from web.api.schemas.campaigns import CampaignStatsOut
from web.console import render
from web.console.campaign_editor import campaign_id
from web.console.guard import Visit, staff

LIVE = (CampaignState.SCHEDULED, CampaignState.SENDING)
COLUMNS = ("recipients", "sent", "delivered", "failed", "replied", "clicked", "opted_out",
           "deferred", "pending", "queued")
FUNNEL = ("recipients", "sent", "delivered", "replied", "clicked", "opted_out")
OVER_TIME = ("sent", "replied", "clicked", "opted_out")


@staff(Permission.CAMPAIGNS)
async def results_page(visit: Visit) -> web.Response:
    campaign = await visit.core.campaigns.get(campaign_id(visit))
    stats = await visit.core.campaigns.stats(campaign.id)
    partial = visit.request.query.get("part") == "figures"
    _ = render.translator(visit.lang)
    # The words the charts show, in the reader's language (their data comes as JSON); lists
    # of pairs keep their order (tojson sorts an object's keys).
    labels = {"stages": [[k, _(f"camp_fig_{k}")] for k in FUNNEL],
              "metrics": [[k, _(f"camp_fig_{k}")] for k in OVER_TIME],
              "total": _("camp_slice_total"), "channel": _("camp_slice_channel"),
              "variant": _("camp_slice_variant"), "none": _("camp_slice_none"),
              "y": _("camp_axis_people")}
    return visit.render("campaign_figures.html" if partial else "campaign_results.html", {
        "campaign": campaign, "stats": stats, "columns": COLUMNS,
        "live": campaign.state in LIVE, "labels": labels})


@staff(Permission.CAMPAIGNS)
async def data(visit: Visit) -> web.Response:
    """The API's stats of the campaign, and its activity over time, as JSON."""
    cid = campaign_id(visit)
    stats = CampaignStatsOut.model_validate(
        (await visit.core.campaigns.stats(cid)).to_json()).model_dump(mode="json", by_alias=True)
    activity = (await visit.core.campaigns.activity(cid)).to_json()
    return web.json_response({"stats": stats, "activity": activity})
