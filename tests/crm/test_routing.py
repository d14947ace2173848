"""Routing: round robin, least busy, capacity, availability, channels and tags, sticky, queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from crm.models import AuditLog, Conversation, Customer, Message
from crm.routing import Candidate, Request, choose
from crm.types import Channel, ConversationStatus, Direction
from tests.support.automation import Notices, build, manager, says
from tests.support.clock import TravelClock

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def cand(i: int, **kw: object) -> Candidate:
    values: dict[str, object] = {"online": True, "capacity": 5, "open_count": 0}
    values.update(kw)
    return Candidate(id=i, **values)  # type: ignore[arg-type]


def test_round_robin_takes_the_longest_idle() -> None:
    team = [cand(1, last_assigned_at=T0), cand(2, last_assigned_at=T0 - timedelta(hours=1)),
            cand(3, last_assigned_at=None)]
    assert choose(team, Request("test"), "round_robin") == 3
    assert choose(team[:2], Request("test"), "round_robin") == 2


def test_least_busy_respects_capacity_and_availability() -> None:
    team = [cand(1, open_count=1), cand(2, open_count=3), cand(3, open_count=0, online=False),
            cand(4, open_count=0, capacity=0)]
    assert choose(team, Request("test"), "least_busy") == 1
    full = [cand(1, open_count=5), cand(2, online=False)]
    assert choose(full, Request("test"), "least_busy") is None


def test_channels_and_tags_limit_and_specialists_go_first() -> None:
    team = [cand(1, channels=frozenset({"email"})), cand(2, tags=frozenset({"wholesale"})),
            cand(3)]
    assert choose(team, Request("telegram"), "round_robin") == 3
    assert choose(team, Request("email"), "least_busy") == 1
    assert choose(team, Request("sms", tags=frozenset({"wholesale"})), "round_robin") == 2


def test_sticky_prefers_the_previous_manager_when_they_can_take_it() -> None:
    team = [cand(1), cand(2, open_count=4)]
    assert choose(team, Request("test", previous_id=2), "least_busy") == 2
    assert choose(team, Request("test", previous_id=2), "least_busy", sticky=False) == 1
    away = [cand(1), cand(2, online=False)]
    assert choose(away, Request("test", previous_id=2), "least_busy") == 1


async def test_round_robin_assigns_in_turn_and_records_it(db: str) -> None:
    core, _ = build(db, TravelClock())
    notices = Notices(core)
    ann, bob = await manager("Ann"), await manager("Bob")
    results = [await core.timeline.ingest(says(f"c{i}")) for i in range(3)]
    convs = [await Conversation.get(id=r.conversation_id) for r in results]
    assert [c.assignee_id for c in convs] == [ann.id, bob.id, ann.id]
    event = await Message.filter(customer_id=results[0].customer_id,
                                 direction=Direction.EVENT).first()
    assert event is not None and event.text == "assigned to Ann"
    assert await AuditLog.filter(action="assign").count() == 3
    assigned = notices.of("assigned")
    assert [n.manager_id for n in assigned] == [ann.id, bob.id, ann.id]
    assert assigned[0].customer_id == results[0].customer_id


async def test_least_busy_with_capacity_then_the_queue(db: str) -> None:
    core, auto = build(db, TravelClock(), routing={"strategy": "least_busy"})
    notices = Notices(core)
    ann = await manager("Ann", capacity=1)
    bob = await manager("Bob", capacity=2)
    got = []
    for i in range(4):
        r = await core.timeline.ingest(says(f"lb{i}"))
        got.append((await Conversation.get(id=r.conversation_id)).assignee_id)
    assert got == [ann.id, bob.id, bob.id, None]
    assert len(await auto.router.queue()) == 1
    assert notices.of("queue")


async def test_queue_drains_oldest_first_when_a_manager_comes_online(db: str) -> None:
    clock = TravelClock()
    core, auto = build(db, clock)
    cid = []
    for i in range(3):
        cid.append((await core.timeline.ingest(says(f"q{i}"))).customer_id)
        clock.advance(minutes=5)
    waiting = await auto.router.queue()
    assert [c.customer_id for c in waiting] == cid
    text = await auto.commands.queue(await manager("Obs", online=False), None, "", clock())
    assert text.startswith("3 waiting") and "waiting 15 min" in text

    ann = await manager("Ann", online=False, capacity=2)
    reply = await auto.commands.online(ann, None, "", clock())
    assert "2 waiting conversation(s) assigned" in reply and "1 still waiting" in reply
    assignees = {c.customer_id: c.assignee_id for c in await Conversation.all()}
    assert assignees == {cid[0]: ann.id, cid[1]: ann.id, cid[2]: None}

    # Closing one frees capacity: the last one waiting goes to Ann at once.
    await core.conversations.set_status(cid[0], ConversationStatus.CLOSED, "manager:1")
    assert (await core.conversations.current(cid[2])).assignee_id == ann.id  # type: ignore[union-attr]
    assert await auto.router.queue() == []


async def test_returning_customer_goes_to_their_previous_manager(db: str) -> None:
    clock = TravelClock()
    core, _ = build(db, clock)
    ann, bob = await manager("Ann"), await manager("Bob")
    first = await core.timeline.ingest(says("returning"))
    assert (await Conversation.get(id=first.conversation_id)).assignee_id == ann.id
    await core.conversations.set_status(first.customer_id, ConversationStatus.CLOSED, "test")
    # Long after the reopen window: a new conversation, which round robin would give to Bob.
    clock.advance(days=30)
    again = await core.timeline.ingest(says("returning", "it's me again"))
    assert again.conversation_id != first.conversation_id
    assert (await Conversation.get(id=again.conversation_id)).assignee_id == ann.id
    # Ann is away: the next new conversation of this customer goes to Bob.
    await core.conversations.set_status(first.customer_id, ConversationStatus.CLOSED, "test")
    await core.managers.set_availability(ann, ann.availability.AWAY)
    clock.advance(days=30)
    third = await core.timeline.ingest(says("returning", "hello?"))
    assert (await Conversation.get(id=third.conversation_id)).assignee_id == bob.id


async def test_tagged_customer_goes_to_the_wholesale_team(db: str) -> None:
    core, _ = build(db, TravelClock())
    await manager("Generalist")
    ws = await manager("Wholesale", tags=("wholesale",))
    r = await core.timeline.ingest(says("shop"))
    await Customer.filter(id=r.customer_id).update(tags=["wholesale"])
    await core.conversations.set_status(r.customer_id, ConversationStatus.CLOSED, "test")
    await Conversation.filter(id=r.conversation_id).update(assignee_id=None)
    # Reopened (within the window): routed again, to the specialist.
    r2 = await core.timeline.ingest(says("shop", "bulk order"))
    assert (await Conversation.get(id=r2.conversation_id)).assignee_id == ws.id


async def test_concurrent_new_conversations_never_exceed_capacity(db: str) -> None:
    """Ten customers write at once; the only manager has room for two: the rest wait."""
    core, _ = build(db, TravelClock())
    ann = await manager("Ann", capacity=2)
    results = await asyncio.gather(*(core.timeline.ingest(says(f"rush{i}")) for i in range(10)))
    assigned = await Conversation.filter(assignee_id=ann.id).count()
    queued = await Conversation.filter(queued_at__isnull=False).count()
    assert assigned == 2
    assert queued == len(results) - 2


async def test_a_drain_nobody_can_take_from_keeps_the_queue_and_adopts_orphans(db: str) -> None:
    clock = TravelClock()
    core, auto = build(db, clock)
    ann = await manager("Ann", capacity=1)
    bob = await manager("Bob", online=False)
    cid = []
    for i in range(3):
        cid.append((await core.timeline.ingest(says(f"full{i}"))).customer_id)
        clock.advance(minutes=5)
    before = [(c.id, c.queued_at) for c in await auto.router.queue()]
    assert len(before) == 2  # Ann took the first and is full; Bob is away
    orphan = await Conversation.create(customer_id=(await Customer.create(name="o")).id,
                                       channel=Channel.TEST)  # routed by nobody
    clock.advance(minutes=10)
    assert await auto.router.drain() == 0
    after = [(c.id, c.queued_at) for c in await auto.router.queue()]
    assert after[:2] == before and after[2][0] == orphan.id and after[2][1] == clock()
    reply = await auto.commands.online(bob, None, "", clock())
    assert "3 waiting conversation(s) assigned" in reply
    assignees = {c.customer_id: c.assignee_id for c in await Conversation.all()}
    assert assignees[cid[0]] == ann.id and assignees[cid[1]] == assignees[cid[2]] == bob.id
