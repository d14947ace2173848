"""One process sends each channel (PostgreSQL, several `crm run`): the one holding the channel's
advisory lock. Two App instances on one database stand for two processes; the lock is on the
suite's PostgreSQL server whatever the database under test (as in the scheduler's test)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import asyncpg

from crm.app import App
from crm.leader import asyncpg_dsn, lock_id_for
from crm.services import Core
from crm.types import Channel, OutboundMessage, Priority
from tests.conftest import make_settings
from tests.crm.test_dispatcher import until
from tests.support.fake_channel import FakeRuntime, FakeSender
from tests.support.postgres import PostgresServer


def _process(db: str, lock_url: str, sender: FakeSender) -> App:
    def channel(core: Core, web_app: object) -> FakeRuntime:
        core.dispatcher.lock_url = lock_url
        return FakeRuntime(sender)

    # A poll far beyond the test's patience: rows the other process queues reach the sending
    # one by NOTIFY. A standby short enough for a takeover within the test.
    settings = make_settings(db, outbox={"poll_interval": 60.0, "standby_seconds": 0.1})
    return App(settings, extra_channels=[channel], builtin_channels=False,
               manage_database=False)


async def _queue(app: App, address: str, priority: int = Priority.LIVE) -> None:
    assert app.core is not None
    async with app.core.bus.unit_of_work():
        await app.core.outbox.enqueue(OutboundMessage(Channel.TEST, address, f"to {address}"),
                                      priority=priority)


def _addresses(sender: FakeSender) -> list[str]:
    return [m.address for m in sender.sent]


async def test_one_process_sends_a_channel_and_another_takes_over(
        db: str, pg_server: PostgresServer) -> None:
    lock_url = pg_server.url(pg_server.create_database("lanes"))
    one, two = FakeSender(), FakeSender()
    first, second = _process(db, lock_url, one), _process(db, lock_url, two)
    started: list[Callable[[], object]] = []
    await first.__aenter__()
    started.append(first.__aexit__)
    try:
        await second.__aenter__()
        started.append(second.__aexit__)
        assert first.core is not None and second.core is not None
        assert first.core.dispatcher.sending == {Channel.TEST}
        assert second.core.dispatcher.sending == set()  # it stands by

        # Rows queued by either process go out through the one that sends the channel: the
        # second announces its own (a manager's reply that reached it, say) to the first.
        await _queue(first, "a")
        await one.wait_sent(1)
        heard: asyncio.Queue[str] = asyncio.Queue()
        listener = await asyncpg.connect(asyncpg_dsn(lock_url))
        await listener.add_listener("crm_outbox_test", lambda *a: heard.put_nowait(a[3]))
        try:
            await _queue(second, "b")
            await one.wait_sent(2)
            await _queue(second, "c", Priority.NOTIFY)
            await one.wait_sent(3)
            said = [json.loads(await asyncio.wait_for(heard.get(), 10)) for _ in range(2)]
            assert said == [{"priority": Priority.LIVE, "address": "b"},
                            {"priority": Priority.NOTIFY, "address": "c"}]
        finally:
            await listener.close()
        assert sorted(_addresses(one)) == ["a", "b", "c"] and two.sent == []

        await started.pop(0)(None, None, None)  # the first process stops: its lock is free
        await _queue(second, "d")  # queued while nobody may be sending: it waits, not lost
        await two.wait_sent(1)
        assert second.core.dispatcher.sending == {Channel.TEST}
        await _queue(second, "e")
        await two.wait_sent(2)
        assert _addresses(two) == ["d", "e"] and len(one.sent) == 3
    finally:
        for stop in reversed(started):
            await stop(None, None, None)


async def test_a_process_that_loses_the_lock_stops_sending_until_it_has_it_again(
        db: str, pg_server: PostgresServer) -> None:
    lock_url = pg_server.url(pg_server.create_database("lanes"))
    core = Core.build(make_settings(db, outbox={"standby_seconds": 0.05}))
    core.dispatcher.lock_url = lock_url
    fake = FakeSender()
    core.dispatcher.register(fake)
    await core.dispatcher.start(single_process=True)
    other = await asyncpg.connect(asyncpg_dsn(lock_url))
    try:
        assert core.dispatcher.sending == {Channel.TEST}
        # Its connection to the database drops (the lock goes with it) and another process
        # takes the lock meanwhile.
        core.dispatcher._leads[Channel.TEST].terminate()
        await other.execute("SELECT pg_advisory_lock($1)", lock_id_for("outbox:test"))
        await until(lambda: not core.dispatcher.sending)
        await core.outbox.enqueue(OutboundMessage(Channel.TEST, "x", "hello"))
        await other.execute("SELECT pg_advisory_unlock($1)", lock_id_for("outbox:test"))
        await fake.wait_sent(1)  # it took the lock back, and with it the channel
        assert core.dispatcher.sending == {Channel.TEST}
    finally:
        await other.close()
        await core.dispatcher.stop()
