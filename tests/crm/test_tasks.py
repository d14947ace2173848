"""Deadlines, follow-ups, reminders and the rating survey, by time travel instead of waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from crm.app import App
from crm.automation import Automation, automation
from crm.i18n import t
from crm.models import Conversation, Message, Outbox, Task
from crm.services import Core
from crm.team_commands import UsageError, parse_duration
from crm.types import Channel, ConversationStatus, Role, TaskKind, TaskState
from scheduler import build_scheduler
from tests.conftest import make_settings
from tests.support.automation import Notices, build, manager, says
from tests.support.clock import TravelClock
from tests.support.fake_channel import FakeRuntime, FakeSender

WEEKDAYS_9_TO_6 = {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}


@dataclass
class Service:
    app: App
    core: Core
    auto: Automation
    fake: FakeSender
    clock: TravelClock
    notices: Notices


@pytest_asyncio.fixture
async def service_factory(db: str) -> AsyncIterator[Any]:
    """The whole service in-process, the customers on the fake channel, a travel clock."""
    async with AsyncExitStackish() as stack:
        async def start(clock: TravelClock, **sections: dict[str, Any]) -> Service:
            fake = FakeSender()
            found: dict[str, Notices] = {}

            def fake_channel(core: Core, web_app: object) -> FakeRuntime:
                found["notices"] = Notices(core)
                return FakeRuntime(fake)

            app = App(make_settings(db, **sections), clock=clock, extra_channels=[fake_channel],
                      builtin_channels=False, manage_database=False)
            await stack.enter(app)
            assert app.core is not None
            return Service(app, app.core, automation(app.core), fake, clock, found["notices"])

        yield start


class AsyncExitStackish:
    def __init__(self) -> None:
        self.apps: list[App] = []

    async def __aenter__(self) -> AsyncExitStackish:
        return self

    async def enter(self, app: App) -> None:
        await app.__aenter__()
        self.apps.append(app)

    async def __aexit__(self, *exc: object) -> None:
        for app in reversed(self.apps):
            await app.__aexit__(None, None, None)


async def sent_to(address: str) -> list[str]:
    rows = await Outbox.filter(address=address).order_by("id")
    return [str(r.payload["text"]) for r in rows]


def test_durations() -> None:
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration("3h") == timedelta(hours=3)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("1w") == timedelta(weeks=1)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    for bad in ("", "2", "tomorrow", "2x", "0m", "-1d", "400d"):
        with pytest.raises(UsageError):
            parse_duration(bad)


async def test_missed_deadline_reminds_then_reassigns(db: str) -> None:
    clock = TravelClock()
    core, auto = build(db, clock, routing={"first_response_minutes": 15},
                       sla={"remind_before_minutes": 5})
    notices = Notices(core)
    ann, bob = await manager("Ann"), await manager("Bob")
    r = await core.timeline.ingest(says("late"))
    conv = await Conversation.get(id=r.conversation_id)
    assert conv.assignee_id == ann.id
    assert conv.first_response_due == clock() + timedelta(minutes=15)

    clock.advance(minutes=9)
    await auto.tasks.run_due()
    assert notices.of("deadline_warning") == []
    clock.advance(minutes=2)
    await auto.tasks.run_due()
    [warning] = notices.of("deadline_warning")
    assert warning.manager_id == ann.id and "4 min left" in warning.text

    clock.advance(minutes=5)
    await auto.tasks.run_due()
    [missed] = notices.of("deadline_missed")
    assert missed.manager_id is None and missed.customer_id == r.customer_id
    assert "assigned to Ann" in missed.text
    assert (await Conversation.get(id=conv.id)).assignee_id == bob.id
    assert notices.of("assigned")[-1].manager_id == bob.id
    assert "Ann missed the response deadline" in notices.of("assigned")[-1].text


async def test_an_answer_in_time_stops_the_deadline(db: str) -> None:
    clock = TravelClock()
    core, auto = build(db, clock, sla={"next_response_minutes": 30})
    notices = Notices(core)
    ann = await manager("Ann")
    r = await core.timeline.ingest(says("quick"))
    clock.advance(minutes=3)
    await core.conversations.send(r.customer_id, "On it!", author=ann)
    clock.advance(hours=2)
    await auto.tasks.run_due()
    assert notices.of("deadline_warning") == notices.of("deadline_missed") == []
    # The customer writes again: a next-response deadline of 30 minutes.
    await core.timeline.ingest(says("quick", "and one more thing"))
    conv = await Conversation.get(id=r.conversation_id)
    assert conv.next_response_due == clock() + timedelta(minutes=30)


async def test_an_answer_sent_through_the_api_counts_as_a_managers(db: str) -> None:
    clock = TravelClock()
    core, auto = build(db, clock, routing={"first_response_minutes": 15},
                       followups={"silence_hours": 4, "max_count": 1})
    notices = Notices(core)
    await manager("Ann")
    r = await core.timeline.ingest(says("601", "where is my order?", Channel.TELEGRAM))
    clock.advance(minutes=3)
    await core.conversations.send(r.customer_id, "It ships today", author_kind="api",
                                  actor="api:shop")
    clock.advance(hours=1)
    await auto.tasks.run_due()
    assert notices.of("deadline_warning") == notices.of("deadline_missed") == []
    # The silence after it is followed up, as after a manager's answer.
    clock.advance(hours=3, minutes=1)
    await auto.tasks.run_due()
    assert await sent_to("601") == ["It ships today", t("followup_nudge", "en")]
    # A person answered already: the customer's next message gets no "we got your message".
    again = await core.timeline.ingest(says("601", "thanks", Channel.TELEGRAM))
    assert again.conversation_id == r.conversation_id
    assert not await auto.replies.acknowledge(r.conversation_id, again.message_id,
                                              Channel.TELEGRAM, "en", key="ack-test")
    assert len(await sent_to("601")) == 2


async def test_deadline_counts_business_hours(db: str) -> None:
    friday_evening = datetime(2026, 3, 6, 17, 55, tzinfo=UTC)
    clock = TravelClock(friday_evening)
    core, auto = build(db, clock, sla={"hours": WEEKDAYS_9_TO_6})
    notices = Notices(core)
    await manager("Ann")
    r = await core.timeline.ingest(says("weekend"))
    conv = await Conversation.get(id=r.conversation_id)
    assert conv.first_response_due == datetime(2026, 3, 9, 9, 10, tzinfo=UTC)
    clock.set(datetime(2026, 3, 8, 12, tzinfo=UTC))  # Sunday: nothing is late yet
    await auto.tasks.run_due()
    assert notices.seen == [n for n in notices.seen if n.kind == "assigned"]


async def test_after_hours_auto_reply_is_sent_once(service_factory: Any) -> None:
    saturday = datetime(2026, 3, 7, 10, tzinfo=UTC)
    s = await service_factory(TravelClock(saturday), sla={
        "hours": WEEKDAYS_9_TO_6, "after_hours_reply": True,
        "after_hours_reply_period_hours": 24})
    await s.core.inbox.receive(says("night-owl", "hello?"))
    s.clock.advance(minutes=10)
    await s.core.inbox.receive(says("night-owl", "anyone?"))
    [reply] = await s.fake.wait_sent(1)
    assert reply.address == "night-owl"
    assert reply.text == t("after_hours", "en", back="Mon 09 Mar 09:00")
    assert len(await sent_to("night-owl")) == 1
    # Automated mail (an auto-reply, a bounce) never gets one.
    await s.core.inbox.receive(says("robot", "I am out of office", automated=True))
    assert await sent_to("robot") == []
    # A day later, still closed (Sunday): once more.
    s.clock.advance(hours=25)
    await s.core.inbox.receive(says("night-owl", "still there?"))
    await s.fake.wait_sent(2)
    assert len(await sent_to("night-owl")) == 2


async def test_followup_goes_when_the_customer_is_silent_not_when_they_wrote(db: str) -> None:
    clock = TravelClock()
    core, auto = build(db, clock, followups={"silence_hours": 4, "max_count": 2})
    ann = await manager("Ann")
    silent = await core.timeline.ingest(says("silent"))
    talker = await core.timeline.ingest(says("talker"))
    await core.conversations.send(silent.customer_id, "Here is our offer", author=ann)
    await core.conversations.send(talker.customer_id, "Here is our offer", author=ann)
    clock.advance(hours=1)
    await core.timeline.ingest(says("talker", "thanks, thinking about it"))

    nudge = t("followup_nudge", "en")
    for _ in range(3):
        clock.advance(hours=4, minutes=1)
        await auto.tasks.run_due()
    assert await sent_to("silent") == ["Here is our offer", nudge, nudge]  # at most max_count
    assert await sent_to("talker") == ["Here is our offer"]


async def test_manual_followup_is_cancelled_when_the_customer_writes_first(db: str) -> None:
    clock = TravelClock()
    core, auto = build(db, clock)
    ann = await manager("Ann")
    quiet = await core.timeline.ingest(says("quiet"))
    eager = await core.timeline.ingest(says("eager"))
    for r in (quiet, eager):
        reply = await auto.commands.followup(ann, r.customer_id, "3d Did the parcel arrive?",
                                             clock())
        assert reply.startswith("Follow-up #")
    assert "usage" in await auto.commands.followup(ann, quiet.customer_id, "3d", clock())
    clock.advance(days=1)
    await core.timeline.ingest(says("eager", "parcel arrived, thanks"))
    clock.advance(days=2, minutes=1)
    await auto.tasks.run_due()
    assert await sent_to("quiet") == ["Did the parcel arrive?"]
    assert await sent_to("eager") == []
    sent = await Message.filter(customer_id=quiet.customer_id, text="Did the parcel arrive?")
    assert sent[0].author_id == ann.id


async def test_remind_fires_once_across_a_restart(db: str) -> None:
    clock = TravelClock()
    core, auto = build(db, clock)
    ann = await manager("Ann")
    r = await core.timeline.ingest(says("invoice"))
    reply = await auto.commands.remind(ann, r.customer_id, "2d call back about the invoice",
                                       clock(), ref="chat:1:77")
    assert "call back about the invoice" in reply
    # The same command delivered twice (a redelivered update) sets one reminder.
    await auto.commands.remind(ann, r.customer_id, "2d call back about the invoice", clock(),
                               ref="chat:1:77")
    assert await Task.filter(kind=TaskKind.REMINDER).count() == 1
    del core, auto  # the process stops; what it knew in memory is gone

    # Two processes come up (a restart and a second one) after the due time.
    clock.advance(days=2, minutes=1)
    started = [build(db, clock) for _ in range(2)]
    seen = [Notices(c) for c, _ in started]
    schedulers = [build_scheduler(c) for c, _ in started]
    try:
        await asyncio.gather(*(s.ticks.tick() for s in schedulers),
                             *(a.tasks.run_due() for _, a in started))
        await asyncio.gather(*(s.ticks.tick() for s in schedulers))
    finally:
        for s in schedulers:
            await s.ticks.leadership.close()
    reminders = [n for notices in seen for n in notices.of("reminder")]
    assert len(reminders) == 1
    assert reminders[0].manager_id == ann.id and reminders[0].customer_id == r.customer_id
    assert reminders[0].text == f"Reminder (customer #{r.customer_id}): " \
                                "call back about the invoice"


async def test_a_task_is_claimed_once_under_concurrency(db: str) -> None:
    clock = TravelClock()
    core, auto = build(db, clock)
    notices = Notices(core)
    ann = await manager("Ann")
    await auto.commands.remind(ann, None, "1h stand-up", clock())
    task = await Task.get(kind=TaskKind.REMINDER)
    clock.advance(hours=2)
    results = await asyncio.gather(*(auto.tasks.fire(task.id) for _ in range(5)))
    assert sorted(results) == [False] * 4 + [True]
    assert len(notices.of("reminder")) == 1
    assert "late because the service was down" in notices.of("reminder")[0].text


async def test_overdue_reminder_escalates_to_admins_unless_done(db: str) -> None:
    clock = TravelClock()
    core, auto = build(db, clock, followups={"reminder_escalate_minutes": 60})
    notices = Notices(core)
    ann = await manager("Ann")
    boss = await manager("Boss", role=Role.ADMIN)
    await auto.commands.remind(ann, None, "1h send the contract", clock())
    await auto.commands.remind(ann, None, "1h book the meeting room", clock())
    clock.advance(hours=1)
    await auto.tasks.run_due()
    assert len(notices.of("reminder")) == 2
    done = await Task.get(text="book the meeting room", kind=TaskKind.REMINDER)
    assert await auto.commands.tasks_command(ann, None, f"done {done.id}", clock()) == \
        f"Task #{done.id} done."
    listing = await auto.commands.tasks_command(ann, None, "", clock())
    assert "escalation" in listing and "send the contract" in listing
    clock.advance(minutes=61)
    await auto.tasks.run_due()
    [escalation] = notices.of("escalation")
    assert escalation.manager_id == boss.id and "send the contract" in escalation.text
    assert await auto.commands.tasks_command(ann, None, "", clock()) == "You have nothing due."


async def test_rating_survey_answer_is_stored(service_factory: Any) -> None:
    s = await service_factory(TravelClock(), followups={"survey": True,
                                                       "survey_delay_minutes": 30})
    ann = await manager("Ann")
    r = await s.core.timeline.ingest(says("rater", "where is my order?"))
    await s.core.conversations.send(r.customer_id, "It ships today.", author=ann)
    await s.core.conversations.set_status(r.customer_id, ConversationStatus.CLOSED,
                                          f"manager:{ann.id}")
    s.clock.advance(minutes=31)
    await s.auto.tasks.run_due()
    sent = await s.fake.wait_sent(2)
    assert sent[1].text == t("survey_question", "en")
    assert [(c.action, c.label) for c in sent[1].choices] == [
        (f"rate:{n}", str(n)) for n in range(1, 6)]

    s.clock.advance(minutes=5)
    await s.core.inbox.receive(says("rater", "5"))  # a bare number answers the choices
    conv = await Conversation.get(id=r.conversation_id)
    assert conv.rating == 5 and conv.status is ConversationStatus.CLOSED
    assert (await s.fake.wait_sent(3))[2].text == t("survey_thanks", "en")
    [score] = await s.auto.followups.csat()
    assert (score.manager, score.ratings, score.average) == ("Ann", 1, 5.0)
    assert await Task.filter(kind=TaskKind.SURVEY, state=TaskState.DONE).count() == 1
