"""The sending engine with a fixed clock and fake senders: quiet hours where each customer lives,
a missed start after downtime, exactly once across pause and resume, an opt-out during the
campaign, the A/B winner, the error-threshold pause, and an idempotent snapshot."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest

from crm.campaigns.service import NotAllowed
from crm.models import Campaign, CampaignRecipient, Message, Outbox
from crm.types import (
    CampaignState,
    Channel,
    ConsentKind,
    ConsentSource,
    DeliveryResult,
    InboundMessage,
    RecipientState,
    Role,
)
from tests.crm.campaigns.conftest import World, make_campaign, marketer, person


async def _states(campaign_id: int) -> dict[int, CampaignRecipient]:
    return {r.customer_id: r for r in await CampaignRecipient.filter(campaign_id=campaign_id)}


async def test_quiet_hours_wait_for_morning_where_each_customer_lives(world: World) -> None:
    core = world.core
    world.clock.set(datetime(2026, 3, 2, 21, 30, tzinfo=UTC))
    ann = await person("Ann", timezone="Europe/Berlin", telegram="101")  # 22:30 there
    bob = await person("Bob", timezone="America/New_York", telegram="102")  # 16:30 there
    cat = await person("Cat", telegram="103")  # no zone of her own: [sla] timezone, UTC
    cid = await make_campaign(core, channels=["telegram"],
                              schedule={"quiet_hours": "21:00-09:00"})
    await core.campaigns.schedule(cid, actor="test")
    await world.tick()
    rows = await _states(cid)
    assert rows[bob].state is RecipientState.QUEUED
    assert (rows[ann].state, rows[ann].deferred, rows[ann].due_at) == (
        RecipientState.PENDING, True, datetime(2026, 3, 3, 8, 0, tzinfo=UTC))  # 09:00 CET
    assert rows[cat].due_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    world.clock.set(datetime(2026, 3, 3, 7, 59, tzinfo=UTC))
    await world.tick()
    assert (await _states(cid))[ann].state is RecipientState.PENDING
    world.clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    await world.tick()
    rows = await _states(cid)
    assert rows[ann].state is RecipientState.QUEUED and rows[cat].state is RecipientState.PENDING
    world.clock.set(datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
    await world.tick()
    assert (await _states(cid))[cat].state is RecipientState.QUEUED
    stats = await core.campaigns.stats(cid)
    assert stats.total.deferred == 2 and stats.total.queued == 3


async def test_a_start_missed_during_downtime_waits_until_started_by_hand(world: World) -> None:
    core = world.core
    mia = await marketer()
    await person("Ann", telegram="101")
    late = await make_campaign(core, by=mia, name="Late")
    soon = await make_campaign(core, by=mia, name="Soon")
    world.clock.set(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    await core.campaigns.schedule(late, datetime(2026, 3, 2, 10, 10, tzinfo=UTC), actor="test")
    await core.campaigns.schedule(soon, datetime(2026, 3, 2, 10, 45, tzinfo=UTC), actor="test")
    # The service was down from 10:05 to 11:00: no tick ran.
    world.clock.set(datetime(2026, 3, 2, 11, 0, tzinfo=UTC))
    await world.tick()
    missed = await Campaign.get(id=late)
    assert missed.state is CampaignState.MISSED and "50 min late" in (missed.state_reason or "")
    assert not await CampaignRecipient.filter(campaign_id=late).exists()  # nothing blasted
    assert (await Campaign.get(id=soon)).state is CampaignState.SENDING  # 15 min: within 30m
    [notice] = [n for n in world.notices if n.kind == "campaign_missed"]
    assert notice.manager_id == mia.id and "«Late»" in notice.render("en")
    assert "пропущенная" in notice.render("ru")
    await core.campaigns.schedule(late, actor="manager:mia")  # started by hand: now
    await world.tick()
    assert (await Campaign.get(id=late)).state is CampaignState.SENDING
    assert await CampaignRecipient.filter(campaign_id=late,
                                          state=RecipientState.QUEUED).count() == 1


async def test_pause_and_resume_send_each_message_exactly_once(world: World) -> None:
    core = world.core
    sms = world.senders[Channel.SMS]
    numbers = [f"+1202555{n:04d}" for n in range(120)]
    for n, number in enumerate(numbers):
        await person(f"P{n}", sms=number)
    cid = await make_campaign(core, channels=["sms"])
    await core.campaigns.schedule(cid, actor="test")
    sms.hold = hold = asyncio.Event()
    await world.tick()
    assert await CampaignRecipient.filter(campaign_id=cid,
                                          state=RecipientState.QUEUED).count() == 120
    await world.start()
    await sms.wait_attempts(20)  # some are being sent, held by the "network"
    taken = await core.campaigns.pause(cid, actor="test")
    in_flight = len(sms.attempts)
    assert taken == 120 - in_flight and taken > 0
    assert await Outbox.filter(state="queued").count() == 0
    hold.set()
    await world.settled()
    await world.tick()  # paused: outcomes recorded, nothing new queued
    assert await CampaignRecipient.filter(campaign_id=cid,
                                          state=RecipientState.SENT).count() == in_flight
    assert await CampaignRecipient.filter(campaign_id=cid,
                                          state=RecipientState.PENDING).count() == taken
    await core.campaigns.resume(cid, actor="test")
    await world.tick()
    await world.settled()
    await world.tick()
    assert Counter(m.address for m in sms.sent) == Counter(numbers)  # each exactly once
    campaign = await Campaign.get(id=cid)
    assert campaign.state is CampaignState.FINISHED
    assert (await core.campaigns.stats(cid)).total.sent == 120
    # Every message is in its customer's timeline, once.
    assert await Message.filter(author_kind="campaign").count() == 120


async def test_an_opt_out_during_the_campaign_is_honoured(world: World) -> None:
    core = world.core
    sms = world.senders[Channel.SMS]
    ids = [await person(f"P{n}", sms=f"+1202555{n:04d}") for n in range(80)]
    cid = await make_campaign(core, channels=["sms"])
    await core.campaigns.schedule(cid, actor="test")
    await world.tick()
    last = ids[-1]  # queued, not yet claimed by anyone
    await core.consent.change(last, ConsentKind.MARKETING, False, channel=Channel.SMS,
                              source=ConsentSource.KEYWORD, actor="customer")
    row = (await _states(cid))[last]
    assert (row.state, row.skip_reason) == (RecipientState.SKIPPED, "opted_out")
    assert row.opted_out_at is not None
    await world.start()
    await world.settled()
    await world.tick()
    assert len(sms.sent) == 79 and "+12025550079" not in {m.address for m in sms.sent}
    stats = await core.campaigns.stats(cid)
    assert stats.total.skipped == {"opted_out": 1} and stats.total.opted_out == 1


async def test_the_a_b_winner_goes_to_the_rest_and_each_person_gets_one_variant(
        world: World) -> None:
    core = world.core
    sms = world.senders[Channel.SMS]
    numbers = {await person(f"P{n}", sms=f"+1202555{n:04d}"): f"+1202555{n:04d}"
               for n in range(90)}
    variants = [{"name": name, "sms": {"text": f"Offer {name} for {{{{ customer.name }}}}"}}
                for name in "ABC"]
    cid = await make_campaign(core, channels=["sms"], variants=variants,
                              ab={"test_share": 0.5, "metric": "reply_rate", "wait": "2h"})
    await core.campaigns.schedule(cid, actor="test")
    await world.start()
    await world.tick()
    test_group = {r.customer_id: r.variant for r in await CampaignRecipient.filter(
        campaign_id=cid) if r.variant is not None}
    assert 25 < len(test_group) < 65 and set(test_group.values()) == {"A", "B", "C"}
    await world.settled()
    await world.tick()  # outcomes in; the test group is out: the wait starts
    assert (await Campaign.get(id=cid)).test_sent_at == world.clock()
    # Those who got B answer.
    for customer_id, variant in test_group.items():
        if variant == "B":
            await core.timeline.ingest(InboundMessage(
                Channel.SMS, f"in-{customer_id}", numbers[customer_id], text="Interested!"))
    reply = await Message.filter(direction="in").first()
    assert reply is not None and reply.meta["campaign_reply"] == {"id": cid,
                                                                  "name": "Spring sale"}
    world.clock.advance(hours=1)
    await world.tick()
    assert (await Campaign.get(id=cid)).winner is None  # the wait is not over
    world.clock.advance(hours=1)
    await world.tick()
    campaign = await Campaign.get(id=cid)
    assert campaign.winner == "B"
    await world.settled()
    await world.tick()
    assert Counter(m.address for m in sms.sent) == Counter(numbers.values())
    rows = await _states(cid)
    for customer_id, variant in test_group.items():  # nobody's variant changed
        assert rows[customer_id].variant == variant
    rest = [r for cid_, r in rows.items() if cid_ not in test_group]
    assert rest and {r.variant for r in rest} == {"B"}
    by_text = Counter(m.text.split(" for ")[0] for m in sms.sent)
    assert by_text["Offer B"] == len(rest) + sum(v == "B" for v in test_group.values())
    stats = await core.campaigns.stats(cid)
    assert stats.by_variant["B"].replied == sum(v == "B" for v in test_group.values())
    assert [n.kind for n in world.notices] == []  # no marketer on this one


async def test_too_many_failures_pause_the_campaign_and_tell_the_marketer(
        world: World) -> None:
    core = world.core
    tg = world.senders[Channel.TELEGRAM]
    mia = await marketer()
    for n in range(100):
        await person(f"P{n}", telegram=str(5000 + n))
    for n in range(70, 100):  # the last thirty blocked the bot
        tg.always[str(5000 + n)] = DeliveryResult.permanent(
            "forbidden: bot was blocked by the user")
    cid = await make_campaign(core, by=mia, channels=["telegram"])
    await core.campaigns.schedule(cid, actor="test")
    await world.start()
    await world.tick()
    await tg.wait_attempts(100)
    await world.settled()
    await world.tick()
    campaign = await Campaign.get(id=cid)
    assert campaign.state is CampaignState.PAUSED
    assert "forbidden" in (campaign.state_reason or "")
    [notice] = [n for n in world.notices if n.kind == "campaign_paused"]
    assert notice.manager_id == mia.id
    text = notice.render("en")
    assert "of its last 50 messages failed" in text and "«forbidden»" in text
    stats = await core.campaigns.stats(cid)
    assert stats.total.failed_by_reason == {"forbidden": 30}


async def test_the_snapshot_is_taken_once_and_a_second_expansion_adds_nobody(
        world: World) -> None:
    core = world.core
    for n in range(30):
        await person(f"P{n}", sms=f"+1202555{n:04d}")
    cid = await make_campaign(core, channels=["sms"])
    await core.campaigns.schedule(cid, actor="test")
    await world.tick()
    campaign = await Campaign.get(id=cid)
    assert campaign.recipients_total == 30 and campaign.segment_filters == {"tag": "club"}
    await person("Late joiner", sms="+12025559999")
    spec, _ = await core.campaigns.engine.prepared(campaign)
    assert await core.campaigns.engine.expand(campaign, spec, world.clock()) == 31
    campaign.segment_filters = {"tag": "nobody"}
    assert await core.campaigns.engine.expand(campaign, spec, world.clock()) == 31
    assert await CampaignRecipient.filter(campaign_id=cid).count() == 31


async def test_only_marketers_and_admins_create_and_schedule(world: World) -> None:
    core = world.core
    await person("Ann", telegram="101")
    agent = await marketer(778, Role.MANAGER)
    admin = await marketer(779, Role.ADMIN)
    with pytest.raises(NotAllowed):
        await make_campaign(core, by=agent)
    cid = await make_campaign(core, by=admin)
    with pytest.raises(NotAllowed):
        await core.campaigns.schedule(cid, actor="manager:agent", by=agent)
    assert (await core.campaigns.schedule(cid, actor="x", by=admin)).state \
        is CampaignState.SCHEDULED
