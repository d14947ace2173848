"""A campaign's results over time: sends, replies, clicks and opt-outs counted in the stretch
they happened in, per channel and variant, their sums the figures of `stats`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm.campaigns.activity import bucket_for
from crm.models import Campaign, CampaignRecipient
from crm.types import CampaignState, RecipientState
from tests.crm.campaigns.conftest import World, make_campaign, person

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_the_stretch_grows_with_the_campaigns_age() -> None:
    assert bucket_for(timedelta(minutes=30)) == 60
    assert bucket_for(timedelta(hours=3)) == 300
    assert bucket_for(timedelta(hours=72)) == 3600
    assert bucket_for(timedelta(days=30)) == 86400
    assert bucket_for(timedelta(days=3000)) == 7 * 86400


async def test_events_fall_in_their_minute_per_channel_and_variant(world: World) -> None:
    core = world.core
    cid = await make_campaign(core)
    world.clock.set(START + timedelta(minutes=9, seconds=30))
    assert (await core.campaigns.activity(cid)).times == ()  # not started: nothing to draw
    await Campaign.filter(id=cid).update(state=CampaignState.SENDING, started_at=START)

    async def row(name: str, channel: str, variant: str, sent: int, replied: int | None = None,
                  clicked: int | None = None, opted_out: int | None = None) -> None:
        def at(minute: int | None) -> datetime | None:
            return None if minute is None else START + timedelta(minutes=minute, seconds=20)

        await CampaignRecipient.create(
            campaign_id=cid, customer_id=await person(name), channel=channel, variant=variant,
            state=RecipientState.SENT, sent_at=at(sent), replied_at=at(replied),
            clicked_at=at(clicked), opted_out_at=at(opted_out))

    await row("Ann", "telegram", "A", 0, replied=2, clicked=5)
    await row("Bob", "telegram", "A", 0, opted_out=3)
    await row("Cat", "email", "A", 1, clicked=2)
    await row("Dan", "sms", "A", 1)
    found = await core.campaigns.activity(cid)
    assert found.bucket_seconds == 60
    assert found.times[0] == START and len(found.times) == 10  # up to now: 10:09
    assert found.total["sent"][:3] == [2, 2, 0]
    assert found.total["replied"][2] == 1 and sum(found.total["replied"]) == 1
    assert found.total["clicked"][2] == 1 and found.total["clicked"][5] == 1
    assert found.by_channel["telegram"]["opted_out"][3] == 1
    assert found.by_channel["email"]["clicked"] == [0, 0, 1] + [0] * 7
    assert set(found.by_variant) == {"A"} and found.by_variant["A"] == found.total
    stats = await core.campaigns.stats(cid)
    for metric, figure in (("sent", stats.total.sent), ("replied", stats.total.replied),
                           ("clicked", stats.total.clicked),
                           ("opted_out", stats.total.opted_out)):
        assert sum(found.total[metric]) == figure, metric
    data = found.to_json()
    assert data["times"][0] == "2026-03-02T10:00:00+00:00"
    assert data["by_channel"]["sms"]["sent"][1] == 1
