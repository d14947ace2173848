"""Waits recorded as they end, through the real automation: a first response counted across a
weekend and a holiday in business hours, a reply, resolutions from the (re)opening; and the
same figures rebuilt from the timeline."""

from __future__ import annotations

from datetime import UTC, datetime

from crm.models import Conversation, ReportFact
from crm.reports.facts import rebuild
from crm.types import ConversationStatus, FactKind
from tests.support.automation import build, manager, says
from tests.support.clock import TravelClock

BERLIN_HOURS = {"timezone": "Europe/Berlin", "holidays": ["2026-03-09"],
                **{"hours": {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}}}


async def test_waits_in_wall_clock_and_business_hours(db: str) -> None:
    # Friday 6 March 17:50 in Berlin (16:50 UTC); Monday 9 March is a holiday.
    clock = TravelClock(datetime(2026, 3, 6, 16, 50, tzinfo=UTC))
    core, auto = build(db, clock, sla=BERLIN_HOURS)
    olga = await manager("Olga")
    first = await core.timeline.ingest(says("+100", "my parcel?"))
    conv = await Conversation.get(id=first.conversation_id)
    assert conv.waiting_since == clock.now
    # Answered on Tuesday 10 March at 09:05 Berlin: 10 minutes on Friday, none over the
    # weekend and the holiday, 5 on Tuesday.
    clock.set(datetime(2026, 3, 10, 8, 5, tzinfo=UTC))
    await core.conversations.send(first.customer_id, "On its way", author=olga)
    clock.advance(minutes=20)
    await core.timeline.ingest(says("+100", "thanks! and the invoice?"))
    clock.advance(minutes=3)
    await core.conversations.send(first.customer_id, "Attached", author=olga)
    await core.conversations.send(first.customer_id, "Anything else?", author=olga)  # no wait
    clock.advance(hours=1)
    await core.conversations.set_status(first.customer_id, ConversationStatus.CLOSED, "cli")
    facts = await ReportFact.all().order_by("id")
    assert [(f.kind, f.seconds, f.business_seconds, f.manager_id) for f in facts] == [
        (FactKind.FIRST_RESPONSE, 3 * 86400 + 15 * 3600 + 15 * 60, 15 * 60, olga.id),
        (FactKind.REPLY, 180, 180, olga.id),
        # From the opening (Friday) to the close (Tuesday 10:28 Berlin): 10 + 88 minutes;
        # routing gave it to Olga, the only one online.
        (FactKind.RESOLUTION, 3 * 86400 + 16 * 3600 + 38 * 60, 98 * 60, olga.id)]
    assert facts[0].channel == "test" and facts[0].customer_id == first.customer_id
    conv = await Conversation.get(id=first.conversation_id)
    assert conv.waiting_since is None and conv.first_reply_at is not None

    # Back within the reopen window: the next resolution counts from the reopening.
    clock.advance(hours=2)
    await core.timeline.ingest(says("+100", "one more thing"))
    clock.advance(minutes=30)
    await core.conversations.set_status(first.customer_id, ConversationStatus.CLOSED, "cli")
    last = await ReportFact.filter(kind=FactKind.RESOLUTION).order_by("-id").first()
    assert last is not None and last.seconds == 30 * 60
    # The reopened wait was never answered: no reply is recorded, and nobody waits any more.
    assert await ReportFact.filter(kind=FactKind.REPLY).count() == 1
    assert (await Conversation.get(id=first.conversation_id)).waiting_since is None
    assert auto.facts is not None


async def test_rebuild_from_the_timeline_gives_the_same_answers(db: str) -> None:
    clock = TravelClock(datetime(2026, 3, 6, 16, 50, tzinfo=UTC))
    core, auto = build(db, clock, sla=BERLIN_HOURS)
    olga = await manager("Olga")
    first = await core.timeline.ingest(says("+200", "hello"))
    clock.set(datetime(2026, 3, 10, 8, 5, tzinfo=UTC))
    await core.conversations.send(first.customer_id, "Hi", author=olga)
    clock.advance(minutes=20)
    await core.timeline.ingest(says("+200", "and?"))
    clock.advance(minutes=3)
    await core.conversations.send(first.customer_id, "Yes", author=olga)
    recorded = [(f.kind, f.seconds, f.business_seconds)
                for f in await ReportFact.all().order_by("id")]
    assert await rebuild(auto.facts) == 2
    rebuilt = [(f.kind, f.seconds, f.business_seconds)
               for f in await ReportFact.all().order_by("id")]
    assert rebuilt == recorded
