"""What the web console asks of the campaigns service beyond the CLI's: a preview of a campaign
as written (before it is stored) and for a chosen customer of the segment, a draft written
again, and a test send for staff who have no Telegram id."""

from __future__ import annotations

import pytest

from crm.errors import Conflict, CrmError, InvalidField
from crm.models import Campaign, Customer, Outbox
from crm.orders.service import CustomerRef, OrderInput
from crm.types import CampaignState, Channel, Role
from tests.crm.campaigns.conftest import World, make_campaign, marketer, person, spec

XSS = "<img src=x onerror=alert(1)>"


async def test_a_campaign_as_written_is_previewed_and_nothing_stored(world: World) -> None:
    core = world.core
    await person("Ann Lee", telegram="101")
    await person("Bob", email="bob@example.com")
    await core.segments.create("club", {"tag": "club"})
    written = spec(telegram={"text": "<b>Hi {{ customer.first_name }}</b>"},
                   sms={"text": "Привет, {{ customer.first_name }}"})
    preview = await core.campaigns.preview_draft(written)
    assert (preview.campaign_id, preview.state, preview.segment.count) == (0, "draft", 2)
    assert preview.reach == {"telegram": 1, "email": 1, "sms": 0, "no_consent": 0,
                             "unreachable": 0}
    telegram = next(s for s in preview.samples if s.channel == "telegram")
    assert telegram.html is not None and telegram.html.startswith("<b>Hi Ann</b>")
    sms = next(s for s in preview.samples if s.channel == "sms")
    assert (sms.sms_encoding, sms.sms_segments) == ("ucs2", 1)
    assert await Campaign.all().count() == 0
    # What cannot be a campaign is named; a template that fails is a warning of the preview.
    with pytest.raises(InvalidField) as bad:
        await core.campaigns.preview_draft(spec(segment="nobody"))
    assert bad.value.field == "segment"
    broken = await core.campaigns.preview_draft(spec(sms={"text": "{{ nope.x }}"}))
    assert any("sms" in w and "nope" in w for w in broken.warnings)


async def test_the_messages_are_written_for_the_chosen_customer_of_the_segment(
        world: World) -> None:
    core = world.core
    ann = await person("Ann Lee", telegram="101")
    hostile = await person(XSS, telegram="102")
    outsider = await person("Zed", tags=("other",), telegram="103")
    await core.orders.put("A-7", OrderInput(customer=CustomerRef(customer_id=hostile),
                                            status="shipped"), source="api", actor="api:shop")
    cid = await make_campaign(core, telegram={
        "text": "Hi {{ customer.name }}, order {{ last_order.number or '-' }}"})
    first = await core.campaigns.preview(cid)
    assert first.sample_for == ann
    chosen = await core.campaigns.preview(cid, customer_id=hostile)
    assert chosen.sample_for == hostile
    telegram = next(s for s in chosen.samples if s.channel == "telegram")
    # Their name escaped for Telegram's HTML, their last order as the engine reads it.
    assert telegram.html is not None
    assert telegram.html.startswith("Hi &lt;img src=x onerror=alert(1)&gt;, order A-7")
    # A customer outside the segment is not written for: the first of the sample is.
    assert (await core.campaigns.preview(cid, customer_id=outsider)).sample_for == ann


async def test_a_draft_is_written_again_and_only_a_draft(world: World) -> None:
    core = world.core
    await person("Ann", telegram="101")
    cid = await make_campaign(core)
    mia = await marketer()
    changed = await core.campaigns.update(cid, spec(name="Autumn", channels=["sms"]),
                                          actor="manager:mia", by=mia)
    assert changed.name == "Autumn" and changed.spec["channels"] == ["sms"]
    assert changed.created_by_id == mia.id
    with pytest.raises(InvalidField) as bad:
        await core.campaigns.update(cid, spec(sms={"text": "{{ customer.__class__ }}"}),
                                    actor="x")
    assert bad.value.field == "variants[0].sms.text"
    assert (await Campaign.get(id=cid)).name == "Autumn"  # the refused change stored nothing
    await core.campaigns.schedule(cid, actor="x")
    with pytest.raises(Conflict):
        await core.campaigns.update(cid, spec(name="Late"), actor="x")
    assert (await Campaign.get(id=cid)).state is CampaignState.SCHEDULED


async def test_a_test_goes_to_an_address_of_staff_without_telegram(world: World) -> None:
    core = world.core
    await person("Ann", telegram="101")
    cid = await make_campaign(core, channels=["telegram", "email"])
    dana = await core.managers.add(None, "Dana", Role.MARKETER, email="dana@example.com")
    sent = await core.campaigns.test(cid, dana, {Channel.EMAIL: "dana@example.com"})
    assert sent == ["A/email → email dana@example.com"]  # Telegram has nowhere to go
    [row] = await Outbox.filter(idempotency_key__startswith="campaign-test:")
    assert row.address == "dana@example.com" and row.payload["subject"] == "Spring sale, Dana"
    with pytest.raises(CrmError, match="nowhere to send your test"):
        await core.campaigns.test(cid, dana)
    assert await Customer.filter(name="Dana").count() == 0  # staff are not customers
