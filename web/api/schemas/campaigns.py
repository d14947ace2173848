"""Segments and campaigns: what a marketer's system sends and reads back.

A campaign's body is the campaign itself as crm/campaigns/spec.py defines it (the same fields
as the TOML files, with `variants` written out), so the API and the files cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field

from crm.campaigns.spec import CampaignSpec
from web.api.schemas.common import Out, PageQuery, Request
from web.api.schemas.events import CampaignFigures

__all__ = ["CampaignSpec"]


class SegmentIn(Request):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=2000)
    filter: dict[str, Any] = Field(
        default_factory=dict,
        description="conditions, as in a segment's TOML [filter] (README: Campaigns): tag, "
                    "tags_any, no_tag, language, reachable, consent, last_inbound_after/before, "
                    "first_seen_after/before, lead_source, attribute (with equals, in, exists, "
                    "gt, gte, lt, lte), orders_min/max, spent_min/max (+ currency), "
                    "last_order_status, rfm (RFM segments of the customers report: champions, "
                    "loyal, potential_loyalists, new_customers, promising, need_attention, "
                    "about_to_sleep, at_risk, cannot_lose, hibernating; + rfm_days, 365), "
                    "combined with all, any and not",
        examples=[{"rfm": ["champions", "loyal"], "reachable": "telegram"},
                  {"any": [{"rfm": "at_risk", "rfm_days": 180}, {"tag": "vip"}]}])
    replace: bool = Field(default=False, description="change the segment of that name")


class SegmentOut(Out):
    id: int
    name: str
    description: str
    filter: dict[str, Any]
    created_by: str
    created_at: datetime | None
    updated_at: datetime | None


class SegmentList(Out):
    items: list[SegmentOut]


class SampleOut(Out):
    id: int
    name: str | None
    language: str | None
    channels: list[str] = Field(description="where the customer has a usable address")


class SegmentPreviewOut(Out):
    count: int = Field(description="customers who match now")
    sample: list[SampleOut] = Field(description="ten of them, by id")


class CampaignOut(Out):
    id: int
    name: str
    state: str = Field(description="draft, scheduled, missed, sending, paused, cancelled or "
                                   "finished")
    state_reason: str | None = Field(description="why it is paused or missed")
    segment_id: int | None
    start_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    winner: str | None = Field(description="the A/B test's winning variant")
    recipients: int = Field(description="the snapshot's size, once it started")
    spec: dict[str, Any] = Field(description="the campaign as written")
    created_at: datetime | None


class CampaignList(Out):
    items: list[CampaignOut]


class CampaignQuery(PageQuery):
    pass


class ScheduleIn(Request):
    at: AwareDatetime | None = Field(default=None, description="when to start (default: the "
                                                               "campaign's own time, or now)")


class ChannelSampleOut(Out):
    channel: str
    variant: str
    subject: str | None
    text: str
    html: str | None
    sms_segments: int | None
    sms_encoding: str | None = Field(description="gsm7 or ucs2")


class CampaignPreviewOut(Out):
    campaign_id: int
    name: str
    state: str
    segment: SegmentPreviewOut
    reach: dict[str, int] = Field(description="recipients per channel now, then no_consent "
                                              "and unreachable")
    samples: list[ChannelSampleOut]
    start_at: datetime | None
    quiet_hours: str
    ab: str | None
    paid_broadcast: bool
    stars: float | None = Field(description="Telegram paid broadcast: the cost at most")
    warnings: list[str]


class CampaignStatsOut(Out):
    campaign_id: int
    name: str
    state: str
    reason: str | None
    winner: str | None
    total: CampaignFigures
    by_channel: dict[str, CampaignFigures] = Field(description="\"none\": no channel chosen")
    by_variant: dict[str, CampaignFigures] = Field(description="\"none\": waiting for the "
                                                               "A/B winner")
