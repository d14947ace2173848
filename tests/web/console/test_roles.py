"""The roles in the console over HTTP: where each role lands, what its navigation offers, and
the campaign-scheduling rule on the console's real scheduling action."""

from __future__ import annotations

import pytest

from crm.models import Campaign, Customer, Identity
from crm.types import CampaignState, Channel, Role
from tests.web.console.conftest import Console


async def draft(console: Console) -> int:
    """A draft campaign to one customer by SMS."""
    customer = await Customer.create(name="Ann", tags=["club"])
    await Identity.create(customer_id=customer.id, channel=Channel.SMS, address="+12025550101")
    await console.core.segments.create("club", {"tag": "club"})
    campaign = await console.core.campaigns.create({
        "name": "Sale", "segment": "club", "channels": ["sms"], "sms": {"text": "Hi"}},
        actor="test")
    return campaign.id


@pytest.mark.parametrize(("role", "allowed"), [
    (Role.LEAD, False), (Role.MANAGER, False), (Role.MARKETER, True), (Role.ADMIN, True),
])
async def test_who_may_schedule_a_campaign(console: Console, role: Role, allowed: bool) -> None:
    cid = await draft(console)
    who = await console.staff("Who", role)
    browser = await console.signed_in(who)
    await browser.get("/console/customers")  # the session's form token
    # The token is checked first: no token, no action, whatever the role.
    assert (await browser.post(f"/console/campaigns/{cid}/schedule", csrf=None)).status == 403
    done = await browser.post(f"/console/campaigns/{cid}/schedule")
    assert done.status == (303 if allowed else 403), done.text
    if allowed:
        assert done.headers["Location"] == f"/console/campaigns/{cid}?done=scheduled"
    else:
        assert "Your role may not open this page or do this." in done.text
    state = (await Campaign.get(id=cid)).state
    assert state is (CampaignState.SCHEDULED if allowed else CampaignState.DRAFT)


@pytest.mark.parametrize(("role", "home", "links"), [
    (Role.MANAGER, "/console/inbox", {"inbox", "customers", "orders"}),
    (Role.LEAD, "/console/inbox", {"inbox", "customers", "orders", "reports"}),
    (Role.MARKETER, "/console/campaigns", {"campaigns", "segments", "customers", "reports"}),
    (Role.ADMIN, "/console/inbox", {"inbox", "customers", "orders", "campaigns", "segments",
                                    "reports", "team"}),
])
async def test_each_role_lands_on_its_first_page(console: Console, role: Role, home: str,
                                                 links: set[str]) -> None:
    who = await console.staff("Who", role)
    browser = await console.signed_in(who)
    landing = await browser.get("/console/")
    assert landing.status == 303 and landing.headers["Location"] == home
    page = await browser.get(home)
    nav = page.text.split("<nav>", 1)[1].split("</nav>", 1)[0]
    shown = {name for name in ("inbox", "customers", "orders", "campaigns", "segments",
                               "reports", "team") if f'href="/console/{name}"' in nav}
    assert shown == links
    # A marketer never opens the inbox, nor its live stream.
    inbox = await browser.get("/console/inbox")
    assert inbox.status == (200 if "inbox" in links else 403)
    assert ('sse-connect="/console/events"' in page.text) is ("inbox" in links)
