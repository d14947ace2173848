"""Segments and campaigns: create, preview, schedule, pause, resume, cancel, stats.

An API key with `campaigns:write` acts as an admin would (crm/campaigns/service.py: only
marketers and admins create and schedule); `campaigns:read` reads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from crm.apikeys import Scope
from crm.models import Campaign, Segment
from web.api.routes import Call, Reply, Routes
from web.api.schemas.campaigns import (
    CampaignList,
    CampaignOut,
    CampaignPreviewOut,
    CampaignQuery,
    CampaignSpec,
    CampaignStatsOut,
    ScheduleIn,
    SegmentIn,
    SegmentList,
    SegmentOut,
    SegmentPreviewOut,
)

routes = Routes("campaigns")
READ, WRITE = (Scope.CAMPAIGNS_READ, Scope.CAMPAIGNS_WRITE), (Scope.CAMPAIGNS_WRITE,)


def segment_out(s: Segment) -> SegmentOut:
    return SegmentOut(id=s.id, name=s.name, description=s.description, filter=s.filters,
                      created_by=s.created_by, created_at=s.created_at, updated_at=s.updated_at)


def campaign_out(c: Campaign) -> CampaignOut:
    return CampaignOut(id=c.id, name=c.name, state=c.state.value, state_reason=c.state_reason,
                       segment_id=c.segment_id, start_at=c.start_at, started_at=c.started_at,
                       finished_at=c.finished_at, winner=c.winner, recipients=c.recipients_total,
                       spec=c.spec, created_at=c.created_at)


@routes.route("GET", "/segments", summary="List segments", scopes=READ, response=SegmentList)
async def list_segments(call: Call[None, None]) -> SegmentList:
    return SegmentList(items=[segment_out(s) for s in await call.core.segments.all()])


@routes.route("POST", "/segments", summary="Save a segment", scopes=WRITE,
              response=SegmentOut, status=201, body=SegmentIn, errors=(409, 422))
async def create_segment(call: Call[SegmentIn, None]) -> Reply:
    """Filters combined with all/any/not; a bad one is a 422 naming the condition
    (`filter.any[1].tag`). A name taken is a 409 unless `replace` is true."""
    body = call.body
    segment = await call.core.segments.create(body.name, body.filter,
                                              description=body.description,
                                              actor=call.principal.actor, replace=body.replace)
    return Reply(segment_out(segment), 201)


@routes.route("GET", "/segments/{id}/preview", summary="Preview a segment", scopes=READ,
              response=SegmentPreviewOut, errors=(404,))
async def preview_segment(call: Call[None, None]) -> SegmentPreviewOut:
    """How many customers match now, and ten of them."""
    segment = await call.core.segments.get(call.path["id"])
    preview = await call.core.segments.preview(segment.filters)
    return SegmentPreviewOut.model_validate({"count": preview.count, "sample": [
        {"id": r.id, "name": r.name, "language": r.language, "channels": list(r.channels)}
        for r in preview.sample]})


@routes.route("GET", "/campaigns", summary="List campaigns", scopes=READ,
              response=CampaignList, query=CampaignQuery)
async def list_campaigns(call: Call[None, CampaignQuery]) -> CampaignList:
    """The latest first (`limit`, at most 200)."""
    limit = min(call.query.limit or 50, 200)
    return CampaignList(items=[campaign_out(c) for c in await call.core.campaigns.all(limit)])


@routes.route("POST", "/campaigns", summary="Create a campaign (a draft)", scopes=WRITE,
              response=CampaignOut, status=201, body=CampaignSpec, errors=(422,))
async def create_campaign(call: Call[CampaignSpec, None]) -> Reply:
    """Content per channel in 1–3 variants (a template each, checked now), the channel
    preference, the segment by name, the schedule and quiet hours, the A/B test."""
    data: dict[str, Any] = call.body.model_dump(mode="json", exclude_none=True)
    campaign = await call.core.campaigns.create(data, actor=call.principal.actor)
    return Reply(campaign_out(campaign), 201,
                 {"Location": f"/api/v1/campaigns/{campaign.id}"})


@routes.route("GET", "/campaigns/{id}", summary="Get a campaign", scopes=READ,
              response=CampaignOut, errors=(404,))
async def get_campaign(call: Call[None, None]) -> CampaignOut:
    return campaign_out(await call.core.campaigns.get(call.path["id"]))


@routes.route("GET", "/campaigns/{id}/preview", summary="Preview a campaign", scopes=READ,
              response=CampaignPreviewOut, errors=(404,))
async def preview_campaign(call: Call[None, None]) -> CampaignPreviewOut:
    """Reach per channel, each message as a customer reads it, SMS segments and encoding,
    the paid broadcast's cost in Telegram Stars."""
    preview = await call.core.campaigns.preview(call.path["id"])
    return CampaignPreviewOut.model_validate({
        **{k: getattr(preview, k) for k in (
            "campaign_id", "name", "state", "reach", "start_at", "quiet_hours", "ab",
            "paid_broadcast", "stars")},
        "segment": {"count": preview.segment.count, "sample": [
            {"id": r.id, "name": r.name, "language": r.language, "channels": list(r.channels)}
            for r in preview.segment.sample]},
        "samples": [dataclasses.asdict(s) for s in preview.samples],
        "warnings": list(preview.warnings)})


@routes.route("POST", "/campaigns/{id}/schedule", summary="Schedule a campaign",
              scopes=WRITE, response=CampaignOut, body=ScheduleIn, errors=(404, 422))
async def schedule_campaign(call: Call[ScheduleIn, None]) -> CampaignOut:
    """A draft (or a paused one not started yet) goes at `at`; a missed one starts now."""
    return campaign_out(await call.core.campaigns.schedule(
        call.path["id"], call.body.at, actor=call.principal.actor))


@routes.route("POST", "/campaigns/{id}/pause", summary="Pause a campaign", scopes=WRITE,
              response=CampaignOut, errors=(404, 422))
async def pause_campaign(call: Call[None, None]) -> CampaignOut:
    """Messages not yet sent wait; those being sent finish."""
    await call.core.campaigns.pause(call.path["id"], actor=call.principal.actor)
    return campaign_out(await call.core.campaigns.get(call.path["id"]))


@routes.route("POST", "/campaigns/{id}/resume", summary="Resume a campaign", scopes=WRITE,
              response=CampaignOut, errors=(404, 422))
async def resume_campaign(call: Call[None, None]) -> CampaignOut:
    return campaign_out(await call.core.campaigns.resume(call.path["id"],
                                                         actor=call.principal.actor))


@routes.route("POST", "/campaigns/{id}/cancel", summary="Cancel a campaign", scopes=WRITE,
              response=CampaignOut, errors=(404, 422))
async def cancel_campaign(call: Call[None, None]) -> CampaignOut:
    await call.core.campaigns.cancel(call.path["id"], actor=call.principal.actor)
    return campaign_out(await call.core.campaigns.get(call.path["id"]))


@routes.route("GET", "/campaigns/{id}/stats", summary="A campaign's results", scopes=READ,
              response=CampaignStatsOut, errors=(404,))
async def campaign_stats(call: Call[None, None]) -> CampaignStatsOut:
    """Per channel and variant: recipients, skipped by reason, deferred by quiet hours, sent,
    delivered, failed by reason, replies within 72 hours, clicks, opt-outs."""
    stats = await call.core.campaigns.stats(call.path["id"])
    return CampaignStatsOut.model_validate(stats.to_json())
