"""The dispatcher's lanes on the real database: who is claimed and sent first, and what bulk holds.

The channel's limiter runs on a clock that stands still until a test moves it, so a token is
handed out exactly when the test says: the order of sends is asserted, never a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from crm.lanes import Lane
from crm.models import Outbox
from crm.ports import RateLimits
from crm.services import Core
from crm.types import Channel, InboundMessage, OutboundMessage, OutboxState, Priority
from tests.support.clock import StepClock
from tests.support.fake_channel import FakeSender


async def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Yield to the loop until `predicate()` holds: a task reaching the limiter's queue signals
    nothing, so this looks (it waits for a state, it does not measure a time)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.002)


async def queue(core: Core, address: str, text: str, priority: int) -> None:
    await core.outbox.enqueue(OutboundMessage(Channel.TEST, address, text), priority=priority)


def one_a_second(core: Core) -> tuple[FakeSender, StepClock]:
    """A channel of one message a second (a burst of one) on a clock that stands still."""
    clock = StepClock()
    core.dispatcher.monotonic = clock
    fake = FakeSender(limits=RateLimits(per_second=1))
    core.dispatcher.register(fake)
    return fake, clock


async def tick(core: Core, clock: StepClock, fake: FakeSender, sends: int) -> None:
    """Hand out one token at a time until `sends` messages went."""
    limiter = core.dispatcher.limiter(Channel.TEST)
    while len(fake.sent) < sends:
        before = len(fake.sent)
        clock.advance(1.0)
        limiter.wake()
        await fake.wait_sent(before + 1)


async def test_a_live_reply_is_claimed_and_sent_before_queued_bulk_rows(core: Core) -> None:
    fake, clock = one_a_second(core)
    for n in range(5):
        await queue(core, f"b{n}", f"bulk {n}", Priority.BULK)
    reply_to = (await core.timeline.ingest(
        InboundMessage(Channel.TEST, "in-1", "live-chat", text="where is my order?"))).customer_id
    await core.dispatcher.start(single_process=True)
    try:
        await fake.wait_sent(1)  # the one token the bucket held went to the first bulk row
        limiter = core.dispatcher.limiter(Channel.TEST)
        await until(lambda: limiter.waiting(Lane.BULK) == 1)  # bulk waits for the next
        await core.conversations.send(reply_to, "it ships today")
        await until(lambda: limiter.waiting(Lane.LIVE) == 1)  # claimed, waiting ahead of bulk
        await tick(core, clock, fake, 6)
    finally:
        await core.dispatcher.stop()
    assert [m.text for m in fake.sent] == [
        "bulk 0", "it ships today", "bulk 1", "bulk 2", "bulk 3", "bulk 4"]


async def test_a_live_row_queued_before_the_start_goes_first(core: Core) -> None:
    fake, clock = one_a_second(core)
    for n in range(3):
        await queue(core, f"b{n}", f"bulk {n}", Priority.BULK)
    await queue(core, "l", "live", Priority.LIVE)
    await core.dispatcher.start(single_process=True)
    try:
        await fake.wait_sent(1)
        await tick(core, clock, fake, 4)
    finally:
        await core.dispatcher.stop()
    assert [m.text for m in fake.sent] == ["live", "bulk 0", "bulk 1", "bulk 2"]


async def test_bulk_rows_waiting_for_a_token_are_not_claimed(core: Core) -> None:
    """Bulk claims only as many rows as it holds tokens for: the rest stay queued, free for
    another process to claim, while this one waits for its next token."""
    fake, _clock = one_a_second(core)
    for n in range(5):
        await queue(core, f"b{n}", f"bulk {n}", Priority.BULK)
    await core.dispatcher.start(single_process=True)
    try:
        await fake.wait_sent(1)
        limiter = core.dispatcher.limiter(Channel.TEST)
        await until(lambda: limiter.waiting(Lane.BULK) == 1)
        waiting = Outbox.exclude(address="b0")  # b0 went (its outcome may be being recorded)
        assert await waiting.filter(state=OutboxState.SENDING).count() == 0
        assert await waiting.filter(state=OutboxState.QUEUED).count() == 4
        taken = await core.outbox.claim(Channel.TEST, 10, 60, lane=Lane.BULK)  # "process 2"
        assert sorted(r.address for r in taken) == ["b1", "b2", "b3", "b4"]
    finally:
        await core.dispatcher.stop()  # the bulk lane was waiting for a token: it just stops
    assert len(fake.attempts) == 1
    assert await Outbox.filter(state=OutboxState.SENDING).count() == 4  # process 2's


async def test_stop_returns_live_rows_waiting_for_a_token(core: Core) -> None:
    fake, _clock = one_a_second(core)
    for n in range(3):
        await queue(core, f"l{n}", f"live {n}", Priority.LIVE)
    await core.dispatcher.start(single_process=True)
    try:
        await fake.wait_sent(1)
        limiter = core.dispatcher.limiter(Channel.TEST)
        await until(lambda: limiter.waiting(Lane.LIVE) == 2)  # claimed, waiting for tokens
    finally:
        await core.dispatcher.stop()
    rows = await Outbox.filter(state=OutboxState.QUEUED).order_by("id")
    assert [(r.address, r.attempts) for r in rows] == [("l1", 0), ("l2", 0)]


async def test_notify_is_not_starved_by_bulk_and_yields_to_live(core: Core) -> None:
    fake, clock = one_a_second(core)
    for n in range(4):
        await queue(core, f"b{n}", f"bulk {n}", Priority.BULK)
    await core.dispatcher.start(single_process=True)
    try:
        await fake.wait_sent(1)
        limiter = core.dispatcher.limiter(Channel.TEST)
        await until(lambda: limiter.waiting(Lane.BULK) == 1)
        await queue(core, "-100", "mirror 1", Priority.NOTIFY)
        await queue(core, "manager", "notice", Priority.NOTIFY)
        await queue(core, "l", "live", Priority.LIVE)
        await until(lambda: limiter.waiting(Lane.NOTIFY) == 2 and limiter.waiting(Lane.LIVE))
        await tick(core, clock, fake, 7)
    finally:
        await core.dispatcher.stop()
    assert [m.text for m in fake.sent] == [
        "bulk 0", "live", "mirror 1", "notice", "bulk 1", "bulk 2", "bulk 3"]


async def test_bulk_in_flight_never_takes_a_live_slot(core: Core) -> None:
    fake = FakeSender()
    stuck = fake.holds["b0"] = asyncio.Event()  # a slow send that keeps bulk's only slot
    core.dispatcher.settings = core.settings.outbox.model_copy(update={"max_in_flight": 1})
    core.dispatcher.register(fake)
    await queue(core, "b0", "bulk 0", Priority.BULK)
    await queue(core, "b1", "bulk 1", Priority.BULK)
    await core.dispatcher.start(single_process=True)
    try:
        await fake.wait_attempts(1)
        await queue(core, "l", "live", Priority.LIVE)
        [sent] = await fake.wait_sent(1)
        assert sent.text == "live"
        assert (await Outbox.get(address="b1")).state is OutboxState.QUEUED  # not claimed
        stuck.set()
        await fake.wait_sent(3)
    finally:
        await core.dispatcher.stop()
    assert [m.text for m in fake.sent] == ["live", "bulk 0", "bulk 1"]


async def test_a_bulk_row_for_a_chat_that_is_not_ready_goes_back_to_the_queue(
        core: Core) -> None:
    """A second message to one chat within its limit would wait claimed: it is queued again,
    due when the chat is ready, and the attempt does not count."""
    fake = FakeSender(limits=RateLimits(per_second=1000, per_recipient=lambda _a: (1, 1.5)))
    core.dispatcher.register(fake)
    await queue(core, "7", "reply", Priority.LIVE)
    await queue(core, "7", "follow-up", Priority.BULK)
    first_due = (await Outbox.get(priority=Priority.BULK)).due_ms
    await core.dispatcher.start(single_process=True)
    try:
        await fake.wait_sent(1)
        async with asyncio.timeout(10):  # the row's state is all there is to see
            while (row := await Outbox.get(priority=Priority.BULK)).due_ms == first_due:
                await asyncio.sleep(0.01)
        assert (row.state, row.attempts) == (OutboxState.QUEUED, 0)
        await fake.wait_sent(2)
    finally:
        await core.dispatcher.stop()
    assert [m.text for m in fake.sent] == ["reply", "follow-up"]
    row = await Outbox.get(priority=Priority.BULK)
    assert (row.state, row.attempts) == (OutboxState.SENT, 1)
