"""The `campaign.finished` webhook: sent once, signed, with the campaign's figures, in the shape
the OpenAPI document describes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.web.conftest import Api
from tests.web.test_campaigns import CAMPAIGN, _club
from tests.web.test_webhooks import SECRET, Receiver, receiver, receiver_verifies

__all__ = ["receiver"]  # the fixture


async def test_a_finished_campaign_is_told_to_the_receivers(
        api_with: Callable[..., Awaitable[Any]], receiver: Receiver) -> None:
    from web.api.schemas.events import CampaignEvent

    api: Api = await api_with(webhooks=[{"url": receiver.url, "secret": SECRET,
                                         "events": ["campaign.finished"]}],
                              campaigns={"tick_seconds": 0.2, "quiet_hours": ""})
    await _club(api, 3)
    await api.post("/api/v1/segments", {"name": "club", "filter": {"tag": "club"}})
    cid = (await api.post("/api/v1/campaigns", CAMPAIGN)).body["id"]
    await api.post(f"/api/v1/campaigns/{cid}/schedule", {})
    [got] = await receiver.wait(1, accepted=True)
    assert receiver_verifies(got)
    event = got["event"]
    assert event["type"] == "campaign.finished" and event["data"]["campaign"]["id"] == cid
    assert event["data"]["stats"]["total"]["sent"] == 3
    assert event["data"]["stats"]["by_channel"]["sms"]["recipients"] == 3
    CampaignEvent.model_validate(event)  # the documented shape
    assert len(receiver.of("campaign.finished")) == 1
