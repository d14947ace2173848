"""The web chat's endpoints over real HTTP, the whole service running: a visitor's messages join
the timeline through the customer dialogue, replies reach their event stream live and are
marked delivered, then read; the history is the visitor's own; buttons are the dialogue's
actions; limits per visitor and per client address."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from crm.i18n import t
from crm.models import AuditLog, Conversation, Customer, Identity, Message
from crm.types import Channel, ConversationStatus, DeliveryStatus, Direction
from tests.channels.webchat.conftest import Chat
from tests.support.consent import takes_marketing


async def _customer_of(visitor_token_owner: Chat, message_id: int) -> Customer:
    message = await Message.get(id=message_id)
    return await Customer.get(id=message.customer_id)


async def test_a_visitor_writes_and_gets_the_acknowledgement_live(chat: Chat) -> None:
    visitor = await chat.visitor()
    assert visitor.session["texts"]["placeholder"] == "Write a message…"
    assert visitor.session["known"] is False
    await visitor.listen()
    sent = await visitor.says("Do you ship to Riga?")
    assert sent["from"] == "visitor" and sent["text"] == "Do you ship to Riga?"
    stored = await Message.get(id=sent["id"])
    assert stored.channel is Channel.WEBCHAT and stored.direction is Direction.IN
    identity = await Identity.get(id=stored.identity_id)
    assert identity.channel is Channel.WEBCHAT and identity.address.startswith("w")
    conversation = await Conversation.get(customer_id=stored.customer_id)
    assert conversation.status is ConversationStatus.OPEN
    # The dialogue's acknowledgement, over the stream, in the visitor's language.
    [ack] = await visitor.replies(1)
    assert ack["from"] == "bot" and ack["text"] == t("ack", "en")
    await chat.status(ack["id"], DeliveryStatus.DELIVERED)
    # A new session with the same token is the same visitor, known now.
    again = await visitor.call("POST", "/session", {"language": "ru"})
    assert again.status == 200 and again.body["known"] is True
    assert again.body["texts"]["send"] == "Отправить"


async def test_a_managers_reply_arrives_live_then_is_read(chat: Chat) -> None:
    visitor = await chat.visitor()
    await visitor.listen()
    first = await visitor.says("Hello")
    customer = await _customer_of(chat, first["id"])
    ann = await chat.manager()
    reply = await chat.core.conversations.send(customer.id, "Hi! How can I help?", author=ann)
    got = await visitor.wait_for(lambda: next(
        (m for m in visitor.received if m["id"] == reply.id), None))
    assert got["from"] == "team" and got["text"] == "Hi! How can I help?"
    await chat.status(reply.id, DeliveryStatus.DELIVERED)
    answer = await visitor.call("POST", "/read", {"up_to": reply.id})
    assert answer.status == 200 and answer.body["read"] >= 1
    assert (await Message.get(id=reply.id)).delivery_status is DeliveryStatus.READ
    # A manager's edit reaches the page as the same message, changed.
    await chat.core.edits.edit(reply.id, "Hi! How may I help?", ann)
    edited = await visitor.wait_for(lambda: next(
        (m for m in visitor.received if m["id"] == reply.id and m["edited"]), None))
    assert edited["text"] == "Hi! How may I help?"


async def test_a_second_tab_sees_what_the_first_sent(chat: Chat) -> None:
    first = await chat.visitor()
    await first.says("one")
    second = await chat.visitor()
    second.token = first.token  # the same browser: the token is in localStorage
    await second.listen()
    sent = await first.says("two")
    got = await second.wait_for(lambda: next(
        (m for m in second.received if m["id"] == sent["id"]), None))
    assert got["from"] == "visitor" and got["text"] == "two"


async def test_a_retried_send_is_one_message(chat: Chat) -> None:
    visitor = await chat.visitor()
    cid = uuid.uuid4().hex
    one = await visitor.says("only once", client_id=cid)
    two = await visitor.says("only once", client_id=cid)
    assert one["id"] == two["id"]
    assert await Message.filter(direction=Direction.IN, text="only once").count() == 1


async def test_bad_input_names_the_field_and_stores_nothing(chat: Chat) -> None:
    visitor = await chat.visitor()
    cases: list[tuple[dict[str, object], str]] = [
        ({"text": "hi"}, "client_id"), ({"text": "", "client_id": "abcdefgh1"}, "text"),
        ({"text": 5, "client_id": "abcdefgh1"}, "text"),
        ({"action": "<script>", "client_id": "abcdefgh1"}, "action")]
    for body, field in cases:
        answer = await visitor.call("POST", "/messages", body)
        assert answer.status == 422 and answer.body["field"] == field, (body, answer.body)
    long = await visitor.call("POST", "/messages", {"text": "x" * 4001, "client_id": "abcdefgh2"})
    assert long.status == 422 and long.body["error"] == "too_long"
    broken = await visitor.call("POST", "/messages", data=b"{not json",
                                headers={"Content-Type": "application/json"})
    assert broken.status == 422 and broken.body["field"] == "body"

    async def huge() -> AsyncIterator[bytes]:  # no Content-Length: read until the limit
        yield b'{"client_id": "abcdefgh3", "text": "'
        for _ in range(20):
            yield b"x" * 4096

    flood = await visitor.call("POST", "/messages", data=huge(),
                               headers={"Content-Type": "application/json"})
    assert flood.status == 413
    assert await Message.all().count() == 0


async def test_the_menu_buttons_are_the_dialogues_actions(chat: Chat) -> None:
    visitor = await chat.visitor()
    await visitor.listen()
    pressed = await visitor.presses("menu")
    assert pressed["text"] == "Menu"  # the timeline keeps what the button said
    [menu] = await visitor.replies(1)
    assert menu["text"] == t("menu_prompt", "en")
    actions = [c["action"] for c in menu["choices"]]
    assert actions == ["talk", "orders", "help", "language", "stop"]
    customer = await _customer_of(chat, pressed["id"])
    # Nothing for the managers: a button is recorded, not routed.
    assert await Conversation.filter(customer_id=customer.id).count() == 0
    await visitor.presses("stop")
    stopped = (await visitor.replies(2))[1]
    assert stopped["text"] == t("opted_out_webchat", "en")
    assert not await takes_marketing(customer.id, Channel.WEBCHAT)
    [audit] = await AuditLog.filter(customer_id=customer.id, action="consent.changed")
    assert audit.detail["source"] == "button" and audit.detail["channel"] == "webchat"
    await visitor.presses("menu")
    again = (await visitor.replies(3))[2]
    assert [c["action"] for c in again["choices"]][-1] == "start"  # the way back
    await visitor.presses("start")
    await visitor.replies(4)
    assert await takes_marketing(customer.id, Channel.WEBCHAT)
    # A typed label of a button counts as the button (like Telegram's), a typed keyword too.
    await visitor.presses("language")
    languages = (await visitor.replies(5))[4]
    assert [c["label"] for c in languages["choices"]] == ["English", "Русский"]
    await visitor.presses("language:ru")
    assert (await visitor.replies(6))[5]["text"] == t("language_set", "ru")
    await visitor.says("помощь")
    assert (await visitor.replies(7))[6]["text"].startswith(t("help_webchat", "ru"))


async def test_cancel_in_a_chat_is_a_question_not_an_opt_out(chat: Chat) -> None:
    visitor = await chat.visitor()
    sent = await visitor.says("Cancel")
    customer = await _customer_of(chat, sent["id"])
    assert await takes_marketing(customer.id, Channel.WEBCHAT)
    assert await Conversation.filter(customer_id=customer.id).count() == 1


async def test_the_history_is_the_visitors_own_in_pages(chat_with: Callable[
        ..., Awaitable[Chat]]) -> None:
    chat = await chat_with(webchat={"history_page": 5, "visitor_burst": 50},
                           bot={"acknowledge": []})
    visitor = await chat.visitor()
    sent = [await visitor.says(f"message {i}") for i in range(7)]
    other = await chat.visitor()
    await other.says("not yours")
    page = await visitor.history()
    assert [m["text"] for m in page["messages"]] == [f"message {i}" for i in range(2, 7)]
    assert page["more"] is True
    earlier = await visitor.history(before=page["messages"][0]["id"])
    assert [m["text"] for m in earlier["messages"]] == ["message 0", "message 1"]
    assert earlier["more"] is False
    assert sent[0]["id"] == earlier["messages"][0]["id"]
    bad = await visitor.call("GET", "/history?before=abc")
    assert bad.status == 422 and bad.body["field"] == "before"
    # A reply the visitor was not there for is delivered when a page of theirs loads it.
    customer = await _customer_of(chat, sent[0]["id"])
    reply = await chat.core.conversations.send(customer.id, "while you were away",
                                               author=await chat.manager())
    await chat.status(reply.id, DeliveryStatus.SENT)
    latest = await visitor.history()
    assert latest["messages"][-1]["text"] == "while you were away"
    await chat.status(reply.id, DeliveryStatus.DELIVERED)


async def test_limits_per_visitor_and_per_address(chat_with: Callable[
        ..., Awaitable[Chat]]) -> None:
    chat = await chat_with(webchat={"visitor_burst": 3, "visitor_rate_per_minute": 1,
                                    "ip_burst": 20, "ip_rate_per_minute": 1,
                                    "streams_per_visitor": 1})
    visitor = await chat.visitor()
    for i in range(3):
        await visitor.says(f"fine {i}")
    refused = await visitor.call("POST", "/messages", {"text": "one more",
                                                       "client_id": uuid.uuid4().hex})
    assert refused.status == 429 and refused.body["error"] == "rate"
    assert int(refused.headers["Retry-After"]) >= 1
    assert await Message.filter(text="one more").count() == 0
    # Another visitor has a budget of their own, until the address has spent its own.
    other = await chat.visitor()
    await other.says("hello")
    await other.listen()
    second = await other.http.get(f"{chat.base}/webchat/events", params={"token": other.token})
    assert second.status == 429  # one stream per visitor here
    assert (await second.json())["error"] == "streams"
    second.close()
    statuses = [(await other.call("GET", "/history")).status for _ in range(10)]
    assert 429 in statuses
    # The address is spent for everybody on it: a new visitor cannot even start.
    fresh = await other.call("POST", "/session", {}, token="")
    assert fresh.status == 429


async def test_streams_close_when_the_service_stops(chat: Chat) -> None:
    visitor = await chat.visitor()
    await visitor.listen()
    assert chat.app.health()["webchat"].state == "up"
    await asyncio.wait_for(chat.app.__aexit__(None, None, None), 10)
