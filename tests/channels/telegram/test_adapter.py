"""The Telegram adapter against the Bot API double: receiving, restarts, webhook, sending."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tortoise.exceptions import DoesNotExist

from crm.events import MessageReceived
from crm.models import Cursor, Identity, Message, Outbox
from crm.types import Channel, DeliveryStatus, Direction, InboundMessage, OutboxState
from tests.support.telegram_double import GROUP, TelegramDouble, user
from tests.support.telegram_fixtures import ServiceFactory, add_manager


async def test_restart_with_pending_updates_loses_none_and_stores_none_twice(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    customers = [user(2000 + n, f"C{n}") for n in range(10)]
    updates = [tg.customer_says(c, f"message {k} from {c['id']}")
               for k in range(4) for c in customers]
    some_stored = asyncio.Event()
    seen: list[int] = []

    async def count(_event: MessageReceived) -> None:
        seen.append(1)
        if len(seen) >= 8:
            some_stored.set()

    async with service(managers_chat_id=None) as app:
        assert app.core is not None
        app.core.bus.subscribe(MessageReceived, count)
        await asyncio.wait_for(some_stored.wait(), 20)
    # Stopped part-way through the batch: the rest was never confirmed to Telegram.
    assert tg.pending_updates()
    stored_before = await Message.filter(direction=Direction.IN).count()
    assert 8 <= stored_before < 40

    async with service(managers_chat_id=None):
        await tg.wait_consumed()
        # Telegram may serve an update again when it did not see our confirmation.
        tg.redeliver(updates[0])
        tg.redeliver(updates[-1])
        await tg.wait_consumed()
        await tg.wait_for(lambda: len({s.chat_id for s in tg.sent}) == 10)
    texts = await Message.filter(direction=Direction.IN).values_list("text", flat=True)
    assert sorted(texts) == sorted(f"message {k} from {c['id']}" for k in range(4)
                                   for c in customers)
    assert Counter(s.chat_id for s in tg.sent) == {c["id"]: 1 for c in customers}  # one ack each
    offset = (await Cursor.get(name__startswith="telegram.offset")).value["offset"]
    assert offset == updates[-1]["update_id"] + 1


async def test_webhook_needs_the_secret(tg: TelegramDouble, service: ServiceFactory) -> None:
    ann = user(3001, "Ann")
    async with service(mode="webhook", webhook_secret="s3cret-Token") as app:
        assert app.http is not None and tg.webhook is not None
        assert tg.webhook["secret_token"] == "s3cret-Token"
        assert tg.webhook["url"].endswith("/telegram/webhook")
        url = f"http://127.0.0.1:{app.http.port}/telegram/webhook"
        message = tg.message(3001, ann, "via webhook")
        assert await tg.post_webhook({"message": message}, None, url) == 403
        assert await tg.post_webhook({"message": message}, "wrong", url) == 403
        assert await Message.filter(direction=Direction.IN).count() == 0
        assert await tg.post_webhook({"message": message}, "s3cret-Token", url) == 200
        # Answered only after the commit: the message is there now.
        assert await Message.filter(direction=Direction.IN, text="via webhook").count() == 1
        assert await tg.post_webhook({"message": message}, "s3cret-Token", url) == 200
        await tg.wait_sent(3001)
    assert await Message.filter(direction=Direction.IN).count() == 1
    assert not any(method == "getUpdates" for method, _ in tg.calls)


async def test_a_blocked_user_is_marked_and_not_retried(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9101, "Bob")
    ann = user(3101, "Ann")
    async with service():
        tg.customer_says(ann, "hi")
        await tg.wait_for(lambda: any("hi" in s.text for s in tg.sent_to(GROUP)))
        thread = tg.sent_to(GROUP)[0].thread_id
        await tg.wait_sent(3101)  # the acknowledgement went out before the block
        tg.blocked.add(3101)
        first = tg.manager_says(GROUP, bob, "are you there?", thread)
        await tg.wait_for(lambda: "Not delivered" in "".join(s.text for s in tg.sent_to(GROUP)))
        assert await tg.wait_for(
            lambda: tg.reactions.get((GROUP, first["message"]["message_id"]))) == ["👎"]
        tg.manager_says(GROUP, bob, "hello??", thread)
        await tg.wait_for(lambda: "cannot be reached" in "".join(
            s.text for s in tg.sent_to(GROUP)))
    identity = await Identity.get(channel=Channel.TELEGRAM, address="3101")
    assert identity.undeliverable_reason and "blocked" in identity.undeliverable_reason
    rejected = [d for m, code, d in tg.rejected if code == 403]
    assert len(rejected) == 1  # one try, then never again
    failed = await Message.get(text="are you there?")
    assert failed.delivery_status is DeliveryStatus.FAILED


async def test_a_burst_of_200_replies_meets_429_and_delivers_each_once_in_order(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    tg.per_second = 25  # Telegram's limits are approximate: it may throttle below ours
    chats = [4000 + n for n in range(50)]
    async with service(managers_chat_id=None) as app:
        core = app.core
        assert core is not None
        ids = {}
        for chat in chats:
            said = tg.message(chat, user(chat), "hi")  # the chat's message ids are shared
            r = await core.timeline.ingest(InboundMessage(
                Channel.TELEGRAM, f"{chat}:{said['message_id']}", str(chat), text="hi"))
            ids[chat] = r.customer_id
        for k in range(4):
            for chat in chats:
                await core.conversations.send(ids[chat], f"reply {k}")
        await tg.wait_for(lambda: len(tg.sent) >= 200, timeout=60)
    assert any(code == 429 for _, code, _ in tg.rejected)
    for chat in chats:
        assert [s.text for s in tg.sent_to(chat)] == [f"reply {k}" for k in range(4)]
    assert await Outbox.filter(state=OutboxState.SENT).count() == 200


async def test_long_texts_are_split_and_edits_recorded_on_the_original(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    ann = user(3201, "Ann")
    long = "\n".join(f"line {n} " + "x" * 90 for n in range(60))  # ~5900 characters
    async with service(managers_chat_id=None) as app:
        assert app.core is not None
        first = tg.customer_says(ann, "typo hre")
        await tg.wait_sent(3201)
        tg.edit(first, "typo here")
        await tg.wait_consumed()
        customer_id = (await Identity.get(address="3201")).customer_id
        await app.core.conversations.send(customer_id, long)
        parts = await tg.wait_sent(3201, 3)
    assert [len(p.text) <= 4096 for p in parts[1:]] == [True, True]
    assert "\n".join(p.text for p in parts[1:]) == long
    original = await Message.get(external_id=f"3201:{first['message']['message_id']}")
    assert original.text == "typo here"
    assert original.meta["edits"][0]["text"] == "typo hre"


async def test_a_poison_update_is_skipped_and_the_bot_goes_on(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    """An update that fails every time (Tortoise calls DoesNotExist an OperationalError, like
    a lost connection) is logged and skipped after a few tries; the next one is handled."""
    customer = user(3001, "Pat")
    after = asyncio.Event()

    async def stored(event: MessageReceived) -> None:
        after.set()

    async def poison(incoming: Any) -> None:
        if incoming.customer is not None and incoming.customer.text == "poison":
            raise DoesNotExist("a row that is not there")

    async with service(managers_chat_id=None) as app:
        assert app.core is not None
        runtime = next(r for r in app.channels if r.channel is Channel.TELEGRAM)
        runtime.handlers.insert(0, poison)  # type: ignore[attr-defined]
        app.core.bus.subscribe(MessageReceived, stored)
        tg.customer_says(customer, "poison")
        last = tg.customer_says(customer, "still here")
        await asyncio.wait_for(after.wait(), 20)
        await tg.wait_consumed()
    texts = await Message.filter(direction=Direction.IN).values_list("text", flat=True)
    assert texts == ["still here"]
    offset = (await Cursor.get(name__startswith="telegram.offset")).value["offset"]
    assert offset == last["update_id"] + 1
