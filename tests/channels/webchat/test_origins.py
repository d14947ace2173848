"""Only the shop's pages (`[webchat] allowed_origins`, exactly) and our own may use the chat:
every endpoint refuses another origin with 403 and stores nothing; an allowed one gets CORS
headers naming it (never `*`), preflights included."""

from __future__ import annotations

import aiohttp
import pytest

from channels.webchat.origins import Origins
from crm.config import parse_settings
from crm.errors import ConfigError
from crm.models import AddressCheck, Identity, Message
from tests.channels.webchat.conftest import ELSEWHERE, SHOP, Chat

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64

ENDPOINTS = [("POST", "/session"), ("POST", "/messages"), ("POST", "/upload"),
             ("GET", "/events"), ("GET", "/history"), ("POST", "/read"), ("POST", "/contact"),
             ("POST", "/contact/confirm"), ("GET", "/widget.js"), ("GET", "/widget.css"),
             ("GET", "/demo"), ("OPTIONS", "/messages")]


async def test_another_origin_is_refused_everywhere_and_nothing_is_stored(chat: Chat) -> None:
    visitor = await chat.visitor()
    await visitor.says("from the shop")  # a customer, so that every endpoint has work to do
    before = await Message.all().count()
    for method, path in ENDPOINTS:
        body = {"text": "from elsewhere", "client_id": "abcdefgh12", "address": "a@b.example",
                "code": "123456", "up_to": 1}
        data = None
        if path == "/upload":
            data = aiohttp.FormData()
            data.add_field("client_id", "abcdefgh13")
            data.add_field("file", PNG, filename="x.png", content_type="image/png")
        async with chat.http.request(
                method, f"{chat.base}/webchat{path}", params={"token": visitor.token},
                json=None if data else body, data=data,
                headers={"Origin": ELSEWHERE, "Authorization": f"Bearer {visitor.token}",
                         "Access-Control-Request-Method": "POST"}) as r:
            assert r.status == 403, (method, path, r.status)
            assert "Access-Control-Allow-Origin" not in r.headers
            if method != "OPTIONS":
                assert (await r.json())["error"] == "origin"
    assert await Message.all().count() == before
    assert await Identity.all().count() == 1
    assert await AddressCheck.all().count() == 0
    # The same visitor from the shop's page is fine.
    again = await visitor.call("GET", "/history")
    assert again.status == 200


async def test_the_shops_origin_gets_cors_headers_naming_it(chat: Chat) -> None:
    async with chat.http.options(f"{chat.base}/webchat/messages", headers={
            "Origin": SHOP, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"}) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == SHOP
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
    visitor = await chat.visitor(origin=SHOP)
    answer = await visitor.call("GET", "/history")
    assert answer.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in answer.headers.getall("Vary")
    # The event stream too: its headers go before its handler returns.
    async with chat.http.get(f"{chat.base}/webchat/events", params={"token": visitor.token},
                             headers={"Origin": SHOP}) as r:
        assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == SHOP
    # No Origin (a same-site call, the script tag): no CORS headers needed, the token decides.
    same = await chat.visitor(origin=None)
    assert "Access-Control-Allow-Origin" not in (await same.call("GET", "/history")).headers


async def test_the_services_own_origin_is_allowed(chat: Chat) -> None:
    own = await chat.visitor(origin=chat.base)
    assert (await own.call("GET", "/history")).headers["Access-Control-Allow-Origin"] == \
        chat.base


def test_an_origin_must_be_exact() -> None:
    origins = Origins(["https://shop.example", "http://localhost:8080"],
                      "http://127.0.0.1:8080/")
    assert origins.allows("https://shop.example")
    assert origins.allows("http://127.0.0.1:8080")  # our own
    assert origins.allows(None)
    for other in ("https://shop.example.evil", "http://shop.example", "https://evil.shop.example",
                  "https://shop.example:8443", "http://localhost:8081", "null", ""):
        assert not origins.allows(other), other


@pytest.mark.parametrize("bad", ["https://shop.example/", "shop.example", "https://Shop.example",
                                 "https://shop.example/path", "*"])
def test_a_wrong_origin_in_the_config_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings({"webchat": {"allowed_origins": [bad]}}, "config.toml")
    assert "[webchat] allowed_origins" in str(info.value) and repr(bad) in str(info.value)
