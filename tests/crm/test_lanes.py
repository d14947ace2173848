"""The lanes' limiter: who gets a channel's next token. Pure parts are handed `now`; the asyncio
shell runs on an injected clock that only moves when a test moves it."""

from __future__ import annotations

import asyncio

import pytest

from crm.lanes import Lane, LaneLimiter, LaneQueue, TokenBucket
from crm.types import Priority
from tests.support.clock import StepClock as Clock


def test_priorities_fall_into_lanes() -> None:
    assert [Lane.of(p) for p in (-3, Priority.LIVE, 4, Priority.NOTIFY, 9, Priority.BULK, 99)] \
        == [Lane.LIVE] * 3 + [Lane.NOTIFY] * 2 + [Lane.BULK] * 2
    for lane in Lane:
        low, high = lane.priorities
        assert Lane.of(low) is lane and Lane.of(high) is lane
    assert Lane.LIVE.priorities[1] + 1 == Lane.NOTIFY.priorities[0]
    assert Lane.NOTIFY.priorities[1] + 1 == Lane.BULK.priorities[0]


def test_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=10, burst=2, now=0)
    assert bucket.take(1, 0) and bucket.take(1, 0)
    assert not bucket.take(1, 0)
    assert bucket.ready_in(1, 0) == pytest.approx(0.1)
    assert bucket.take(1, 0.1)
    assert bucket.take_up_to(5, 60) == 2  # a minute idle still keeps only the burst


def test_a_pause_grants_nothing_and_then_starts_from_empty() -> None:
    bucket = TokenBucket(rate=10, burst=2, now=0)
    bucket.pause(until=3, now=0)
    assert not bucket.take(1, 2.9)
    assert bucket.take_up_to(2, 2.9) == 0
    assert bucket.ready_in(1, 2.0) == pytest.approx(1.0 + 0.1)
    assert not bucket.take(1, 3.0)  # nothing accrued during the pause
    assert bucket.take(1, 3.1)


def test_waiters_are_served_by_lane_then_in_arrival_order() -> None:
    queue = LaneQueue(TokenBucket(rate=1, burst=1, now=0))
    assert queue.bucket.take(1, 0)  # empty
    bulk1 = queue.join(Lane.BULK)
    notify = queue.join(Lane.NOTIFY)
    bulk2 = queue.join(Lane.BULK)
    live1 = queue.join(Lane.LIVE)
    live2 = queue.join(Lane.LIVE)
    served = []
    for second in range(1, 6):
        assert queue.next_in(second - 0.5) == pytest.approx(0.5)
        assert queue.grant(second - 0.5) == []
        served += queue.grant(second)
    assert served == [live1, live2, notify, bulk1, bulk2]
    assert queue.next_in(6) is None


def test_a_batch_at_the_head_is_not_overtaken_within_its_lane() -> None:
    queue = LaneQueue(TokenBucket(rate=1, burst=3, now=0))
    queue.bucket.take(3, 0)
    batch = queue.join(Lane.BULK, 3)
    single = queue.join(Lane.BULK, 1)
    assert queue.grant(2) == []  # two tokens are there, but the batch came first
    assert queue.grant(3) == [batch]
    assert queue.grant(4) == [single]


def test_leaving_gives_granted_tokens_back_and_lets_the_next_through() -> None:
    queue = LaneQueue(TokenBucket(rate=1, burst=1, now=0))
    queue.bucket.take(1, 0)
    first, second = queue.join(Lane.LIVE), queue.join(Lane.LIVE)
    queue.leave(first)  # gave up while waiting
    assert queue.waiting(Lane.LIVE) == 1
    assert queue.grant(1) == [second]
    queue.leave(second)  # gave up after it was granted: its token is still there
    queue.leave(second)  # and only once
    assert queue.bucket.take_up_to(5, 1) == 1


def test_try_take_never_jumps_a_waiter_of_its_lane_or_a_better_one() -> None:
    queue = LaneQueue(TokenBucket(rate=1, burst=3, now=0))
    live = queue.join(Lane.LIVE, 3)  # waits: 3 are there, but it is not served until grant
    assert queue.try_take(Lane.BULK, 2, 0) == 0
    assert queue.grant(0) == [live]
    assert queue.try_take(Lane.BULK, 2, 2) == 2
    bulk = queue.join(Lane.BULK)
    assert queue.try_take(Lane.LIVE, 1, 3) == 1  # a better lane may: it would be served first
    assert queue.try_take(Lane.BULK, 1, 4) == 0
    assert queue.grant(4) == [bulk]


async def test_the_limiter_serves_live_before_notify_before_bulk() -> None:
    clock = Clock()
    limiter = LaneLimiter(rate=1, burst=1, clock=clock)
    await limiter.acquire(Lane.BULK)  # the one token there was
    order: list[str] = []

    async def want(lane: Lane, name: str) -> None:
        await limiter.acquire(lane)
        order.append(name)

    tasks = [asyncio.create_task(want(lane, name)) for lane, name in (
        (Lane.BULK, "bulk"), (Lane.NOTIFY, "notify"), (Lane.LIVE, "live"))]
    await asyncio.sleep(0)  # each task joins the queue
    assert [limiter.waiting(lane) for lane in Lane] == [1, 1, 1]
    for n in range(1, 4):
        clock.advance(1)
        limiter.wake()
        while len(order) < n:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == ["live", "notify", "bulk"]


async def test_a_waiter_cancelled_after_its_grant_gives_the_token_back() -> None:
    clock = Clock()
    limiter = LaneLimiter(rate=1, burst=1, clock=clock)
    await limiter.acquire(Lane.LIVE)
    task = asyncio.create_task(limiter.acquire(Lane.LIVE))
    await asyncio.sleep(0)
    clock.advance(1)
    limiter.wake()  # granted: the task will resume on the next step...
    task.cancel()  # ...but is cancelled before it does
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.try_acquire(Lane.BULK, 1) == 1  # the token came back


async def test_a_cancelled_waiter_does_not_hold_up_the_ones_behind_it() -> None:
    clock = Clock()
    limiter = LaneLimiter(rate=1, burst=1, clock=clock)
    await limiter.acquire(Lane.LIVE)
    first = asyncio.create_task(limiter.acquire(Lane.LIVE))
    second = asyncio.create_task(limiter.acquire(Lane.BULK))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    clock.advance(1)
    limiter.wake()
    await second
    assert limiter.waiting(Lane.LIVE) == limiter.waiting(Lane.BULK) == 0


async def test_a_pause_holds_every_lane() -> None:
    clock = Clock()
    limiter = LaneLimiter(rate=10, burst=1, clock=clock)
    limiter.pause(2.0)  # a flood wait from the channel
    task = asyncio.create_task(limiter.acquire(Lane.LIVE))
    await asyncio.sleep(0)
    clock.advance(1.9)
    limiter.wake()
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.2)  # the pause is over, and a tenth of a second has refilled one token
    limiter.wake()
    await task
