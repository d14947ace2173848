"""A visitor is who their signed token says, on every call: a changed token, one of another
purpose, or one from another key is refused with 403, an expired one with 401, and nothing is
stored either way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from channels.webchat.tokens import VisitorTokens, new_visitor_id
from crm.links import LinkExpired, LinkTampered, Signer
from crm.models import Identity, Message
from tests.channels.webchat.conftest import Chat
from tests.support.clock import TravelClock

CALLS = [("POST", "/messages", {"text": "hi", "client_id": "abcdefgh12"}),
         ("GET", "/history", None), ("POST", "/read", {"up_to": 1}),
         ("POST", "/contact", {"address": "a@b.example"}),
         ("POST", "/contact/confirm", {"code": "123456"}), ("POST", "/session", {})]


def _forge(token: str) -> str:
    """The same visitor's token with one character of its MAC changed."""
    body, _, mac = token.rpartition(".")
    return f"{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"


async def test_a_forged_token_is_refused_on_every_call(chat: Chat) -> None:
    visitor = await chat.visitor()
    await visitor.says("the real one")
    other_purpose = await chat.core.signer.sign(
        "file", new_visitor_id(), chat.core.clock() + timedelta(days=1))
    foreign_key = await Signer("another-key-0123456789abcdef0123456789", chat.core.clock).sign(
        "webchat", new_visitor_id(), chat.core.clock() + timedelta(days=1))
    for forged in (_forge(visitor.token), other_purpose, foreign_key, "nonsense", "a.b.c"):
        for method, path, body in CALLS:
            answer = await visitor.call(method, path, body, token=forged)
            assert answer.status == 403 and answer.body["error"] == "token", (forged, path)
        stream = await chat.http.get(f"{chat.base}/webchat/events", params={"token": forged})
        assert stream.status == 403
        stream.close()
    no_token = await visitor.call("GET", "/history", token="")
    assert no_token.status == 403
    assert await Message.filter(text="hi").count() == 0
    assert await Identity.all().count() == 1


async def test_an_expired_token_is_refused_and_a_visit_renews_it(
        chat_with: Callable[..., Awaitable[Chat]]) -> None:
    clock = TravelClock()
    chat = await chat_with(clock=clock, webchat={"visitor_days": 10})
    visitor = await chat.visitor()
    await visitor.says("day one")
    clock.advance(days=9)
    renewed = await visitor.call("POST", "/session", {})
    assert renewed.status == 200
    clock.advance(days=9)  # 18 days after the first token, 9 after the renewed one
    old = await visitor.call("GET", "/history")
    assert old.status == 401 and old.body["error"] == "expired"
    visitor.token = renewed.body["token"]
    page = await visitor.history()
    assert page["messages"][0]["text"] == "day one"


async def test_tokens_name_their_visitor_and_nothing_else() -> None:
    clock = TravelClock()
    tokens = VisitorTokens(Signer("k" * 40, clock), days=1)
    visitor = new_visitor_id()
    token, expires = await tokens.issue(visitor)
    assert await tokens.visitor(token) == visitor
    assert expires == clock() + timedelta(days=1)
    clock.advance(days=1)
    with pytest.raises(LinkExpired):
        await tokens.visitor(token)
    # A genuine token of ours whose payload is no visitor id is refused.
    odd = await Signer("k" * 40, clock).sign("webchat", "../../etc", clock() +
                                             timedelta(days=1))
    with pytest.raises(LinkTampered):
        await tokens.visitor(odd)
