"""Segments and campaigns through the API over real HTTP: scopes, validation naming the field,
the lifecycle (create, preview, schedule, pause, resume, cancel), a campaign that runs and its
stats, and the OpenAPI document listing it all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from crm.apikeys import Scope
from crm.models import Campaign, Segment
from crm.types import CampaignState
from tests.support.reports_data import seed
from tests.web.conftest import Api
from tests.web.test_auth import is_problem

CAMPAIGN: dict[str, Any] = {
    "name": "Sale", "segment": "club", "channels": ["sms"],
    "variants": [{"name": "A", "sms": {"text": "Hi {{ customer.first_name }}: -20% today"}}]}


async def _club(api: Api, n: int = 3) -> None:
    for i in range(n):
        await api.customer(f"+1202555{i:04d}", name=f"Ann{i}")
    for customer in await api.core.customers.find(limit=100):
        await api.core.customers.update(customer.id, tags=["club"])


async def test_scopes_guard_every_endpoint(api: Api) -> None:
    is_problem(await api.get("/api/v1/campaigns", key=None), 401, "unauthorized")
    reader = await api.key_with(Scope.CAMPAIGNS_READ)
    assert (await api.get("/api/v1/campaigns", key=reader)).status == 200
    is_problem(await api.post("/api/v1/segments", {"name": "x"}, key=reader), 403,
               "missing-scope")
    is_problem(await api.post("/api/v1/campaigns", CAMPAIGN, key=reader), 403,
               "missing-scope")
    other = await api.key_with(Scope.ORDERS_WRITE)
    is_problem(await api.get("/api/v1/segments", key=other), 403, "missing-scope")
    assert not await Segment.exists() and not await Campaign.exists()


async def test_bad_bodies_name_the_field_and_store_nothing(api: Api) -> None:
    bad = await api.post("/api/v1/segments", {"name": "club", "filter": {
        "any": [{"language": "ru"}, {"colour": "red"}]}})
    is_problem(bad, 422, "validation-error")
    assert bad.body["errors"][0]["field"] == "filter.any[1].colour"
    await api.post("/api/v1/segments", {"name": "club", "filter": {"tag": "club"}})
    missing = await api.post("/api/v1/campaigns", {**CAMPAIGN, "channels": ["sms", "email"]})
    is_problem(missing, 422, "validation-error")
    assert "variant A needs [email] content" in missing.text
    template = await api.post("/api/v1/campaigns", {**CAMPAIGN, "variants": [
        {"name": "A", "sms": {"text": "{{ customer.__class__ }}"}}]})
    is_problem(template, 422, "validation-error")
    assert template.body["errors"][0]["field"] == "variants[0].sms.text"
    unknown = await api.post("/api/v1/campaigns", {**CAMPAIGN, "colour": "red"})
    is_problem(unknown, 422, "validation-error")
    no_segment = await api.post("/api/v1/campaigns", {**CAMPAIGN, "segment": "nobody"})
    assert no_segment.body["errors"][0]["field"] == "segment"
    assert not await Campaign.exists()


async def test_a_segment_of_rfm_segments(api: Api) -> None:
    seeded = await seed()  # the reports' hand-worked orders of January to March 2026
    # Scored over ten years back from today, so the orders of 2026 stay in the window.
    rfm = {"rfm": ["champions", "at risk"], "rfm_days": 3650}
    made = await api.post("/api/v1/segments", {"name": "keep", "filter": rfm})
    assert made.status == 201 and made.body["filter"] == rfm
    preview = await api.get(f"/api/v1/segments/{made.body['id']}/preview")
    assert [r["name"] for r in preview.body["sample"]] == ["Ann", "Dina"]
    assert preview.body["count"] == 2 and preview.body["sample"][0]["id"] == \
        seeded.customers["Ann"].id
    bad = await api.post("/api/v1/segments", {"name": "whales", "filter": {
        "all": [{"rfm": "whales"}]}})
    is_problem(bad, 422, "validation-error")
    assert bad.body["errors"][0]["field"] == "filter.all[0].rfm"
    assert "not an RFM segment" in bad.text
    spec = (await api.get("/api/v1/openapi.json", key=None)).body
    described = spec["components"]["schemas"]["SegmentIn"]["properties"]["filter"]
    assert "rfm" in described["description"] and described["examples"][0]["rfm"]


async def test_the_lifecycle_from_draft_to_cancelled(api: Api) -> None:
    await _club(api)
    made = await api.post("/api/v1/segments", {"name": "club", "filter": {"tag": "club"}})
    assert made.status == 201
    segment_id = made.body["id"]
    assert [s["name"] for s in (await api.get("/api/v1/segments")).body["items"]] == ["club"]
    preview = await api.get(f"/api/v1/segments/{segment_id}/preview")
    assert preview.body["count"] == 3 and preview.body["sample"][0]["channels"] == ["sms"]
    taken = await api.post("/api/v1/segments", {"name": "club"})
    is_problem(taken, 409, "conflict")

    created = await api.post("/api/v1/campaigns", CAMPAIGN)
    assert created.status == 201 and created.body["state"] == "draft"
    cid = created.body["id"]
    assert created.headers["Location"] == f"/api/v1/campaigns/{cid}"
    shown = await api.get(f"/api/v1/campaigns/{cid}/preview")
    assert shown.body["reach"] == {"sms": 3, "no_consent": 0, "unreachable": 0}
    [sample] = shown.body["samples"]
    assert (sample["sms_segments"], sample["sms_encoding"]) == (1, "gsm7")
    assert sample["text"].endswith("Reply STOP to opt out.")
    later = await api.post(f"/api/v1/campaigns/{cid}/schedule",
                           {"at": "2030-01-01T10:00:00+02:00"})
    assert later.body["state"] == "scheduled"
    assert later.body["start_at"].startswith("2030-01-01T08:00")
    assert (await api.post(f"/api/v1/campaigns/{cid}/pause")).body["state"] == "paused"
    assert (await api.post(f"/api/v1/campaigns/{cid}/resume")).body["state"] == "scheduled"
    assert (await api.post(f"/api/v1/campaigns/{cid}/cancel")).body["state"] == "cancelled"
    refused = await api.post(f"/api/v1/campaigns/{cid}/pause")
    is_problem(refused, 422, "rejected")
    is_problem(await api.get("/api/v1/campaigns/999"), 404, "not-found")
    listing = await api.get("/api/v1/campaigns")
    assert [c["id"] for c in listing.body["items"]] == [cid]


async def test_a_campaign_runs_and_its_stats_say_so(
        api_with: Callable[..., Awaitable[Any]]) -> None:
    api: Api = await api_with(campaigns={"tick_seconds": 0.2, "quiet_hours": ""})
    await _club(api, 4)
    await api.post("/api/v1/segments", {"name": "club", "filter": {"tag": "club"}})
    cid = (await api.post("/api/v1/campaigns", CAMPAIGN)).body["id"]
    assert (await api.post(f"/api/v1/campaigns/{cid}/schedule", {})).status == 200
    await api.sms.wait_sent(4)
    for _ in range(200):
        if (await Campaign.get(id=cid)).state is CampaignState.FINISHED:
            break
        await asyncio.sleep(0.05)
    stats = (await api.get(f"/api/v1/campaigns/{cid}/stats")).body
    assert stats["state"] == "finished"
    assert stats["total"]["sent"] == 4 and stats["by_channel"]["sms"]["sent"] == 4
    assert stats["by_variant"]["A"]["recipients"] == 4


async def test_the_openapi_document_lists_segments_and_campaigns(api: Api) -> None:
    spec = (await api.get("/api/v1/openapi.json", key=None)).body
    for path, method, scope in (("/segments", "post", "campaigns:write"),
                                ("/segments/{id}/preview", "get", "campaigns:read"),
                                ("/campaigns", "post", "campaigns:write"),
                                ("/campaigns/{id}/preview", "get", "campaigns:read"),
                                ("/campaigns/{id}/schedule", "post", "campaigns:write"),
                                ("/campaigns/{id}/pause", "post", "campaigns:write"),
                                ("/campaigns/{id}/resume", "post", "campaigns:write"),
                                ("/campaigns/{id}/cancel", "post", "campaigns:write"),
                                ("/campaigns/{id}/stats", "get", "campaigns:read")):
        assert scope in spec["paths"][path][method]["x-scopes"], path
    assert "campaign.finished" in spec["webhooks"]
