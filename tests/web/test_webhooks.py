"""Webhooks out: signed events through the outbox, to a real aiohttp receiver run by the test."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from crm.config import expand_env, parse_settings
from crm.errors import ConfigError
from crm.events import DeliveryChanged
from crm.models import Identity, Outbox
from crm.types import Channel, DeliveryResult, OutboxState, Role, WebhookEvent
from tests.web.conftest import Api
from web.api.schemas.events import EVENT_MODELS
from web.webhooks import signature_header, verify

SECRET = "whsec_test_0123456789abcdef"


@dataclass
class Receiver:
    """An HTTP endpoint that records each POST and answers with the next scripted status."""

    url: str = ""
    got: list[dict[str, Any]] = field(default_factory=list)
    script: list[int] = field(default_factory=list)  # statuses before answering 200
    down_until: asyncio.Event | None = None  # answer 503 until it is set
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = 200
        if self.down_until is not None and not self.down_until.is_set():
            status = 503
        elif self.script:
            status = self.script.pop(0)
        self.got.append({"headers": dict(request.headers), "body": body, "status": status,
                         "event": json.loads(body)})
        async with self.changed:
            self.changed.notify_all()
        return web.Response(status=status)

    async def wait(self, count: int, *, accepted: bool = False,
                   timeout: float = 20) -> list[dict[str, Any]]:
        def enough() -> bool:
            return len(self.accepted() if accepted else self.got) >= count

        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(enough), timeout)
        return self.accepted() if accepted else self.got

    def accepted(self) -> list[dict[str, Any]]:
        return [g for g in self.got if 200 <= g["status"] < 300]

    def of(self, event: str) -> list[dict[str, Any]]:
        return [g["event"] for g in self.accepted() if g["event"]["type"] == event]


@asynccontextmanager
async def serving(rec: Receiver) -> AsyncIterator[Receiver]:
    """`rec` answering POSTs on a port of its own."""
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving(Receiver()) as rec:
        yield rec


class Recorded:
    """Awaits outbox outcomes being recorded (the receiver sees a POST before its commit)."""

    def __init__(self, api: Api) -> None:
        self.changed = asyncio.Condition()
        api.core.bus.subscribe(DeliveryChanged, self._seen)

    async def _seen(self, _event: DeliveryChanged) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def until(self, state: OutboxState, count: int, timeout: float = 20) -> list[Outbox]:
        async with self.changed:
            while True:
                rows = await Outbox.filter(channel=Channel.WEBHOOK, state=state).order_by("id")
                if len(rows) >= count:
                    return rows
                await asyncio.wait_for(self.changed.wait(), timeout)


def receiver_verifies(got: dict[str, Any]) -> bool:
    """What a receiver does, as the README says: HMAC-SHA256 of "t.body" with the secret."""
    header = got["headers"]["Chatcrm-Signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + got["body"],
                        hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(parts["t"])) < 300
    return fresh and hmac.compare_digest(expected, parts["v1"])


async def test_receivers_get_signed_events_for_what_happens(api_with: Any,
                                                            receiver: Receiver) -> None:
    api: Api = await api_with(webhooks=[{"url": receiver.url, "secret": SECRET,
                                         "events": ["*"]}])
    olga = await api.core.managers.add(8001, "Olga", Role.MANAGER)
    cid = await api.customer(name="Ann", text="Where is my <order>?")
    conv = (await api.get(f"/api/v1/customers/{cid}")).body["conversations"]["latest"]["id"]
    await receiver.wait(2, accepted=True)
    sent = await api.post(f"/api/v1/customers/{cid}/messages", {"text": "On its way"})
    await api.post(f"/api/v1/conversations/{conv}/assign", {"manager_id": olga.id})
    await api.post(f"/api/v1/conversations/{conv}/close")
    await api.post(f"/api/v1/customers/{cid}/consent", {"kind": "marketing", "granted": False})
    await receiver.wait(6, accepted=True)

    [received] = receiver.of("message.received")
    assert received["data"]["message"]["text"] == "Where is my <order>?"
    assert received["data"]["message"]["customer_id"] == cid
    assert [e["data"]["conversation"]["id"] for e in receiver.of("conversation.opened")] == [conv]
    [message_sent] = receiver.of("message.sent")
    assert message_sent["data"]["message"]["id"] == sent.body["id"]
    [assigned] = receiver.of("conversation.assigned")
    assert assigned["data"]["conversation"]["assignee_id"] == olga.id
    assert assigned["data"]["actor"] == "api:default"
    assert receiver.of("conversation.closed")[0]["data"]["conversation"]["status"] == "closed"
    [opt_out] = receiver.of("customer.opted_out")
    assert opt_out["data"] == {"customer_id": cid, "kind": "marketing", "channel": None,
                               "source": "api"}
    for got in receiver.accepted():
        assert receiver_verifies(got), got["headers"]
        assert verify(SECRET, got["headers"]["Chatcrm-Signature"], got["body"], now=time.time())
        assert not verify("another-secret-0123456", got["headers"]["Chatcrm-Signature"],
                          got["body"], now=time.time())
        assert got["headers"]["Chatcrm-Event-Id"] == got["event"]["id"]
        assert got["headers"]["Content-Type"] == "application/json"
        # The payload is what the OpenAPI document's `webhooks` section says.
        EVENT_MODELS[WebhookEvent(got["event"]["type"])].model_validate(got["event"])
    assert len({g["event"]["id"] for g in receiver.accepted()}) == len(receiver.accepted())


async def test_a_failing_receiver_gets_the_same_event_again_after_backoff(
        api_with: Any, receiver: Receiver) -> None:
    receiver.script = [500, 502]
    api: Api = await api_with(webhooks=[{"url": receiver.url, "secret": SECRET,
                                         "events": ["message.received"]}])
    recorded = Recorded(api)
    await api.customer(text="hello")
    got = await receiver.wait(3)
    assert [g["status"] for g in got] == [500, 502, 200]
    assert len({g["event"]["id"] for g in got}) == 1  # the receiver can dedupe
    assert len({g["body"] for g in got}) == 1
    assert all(receiver_verifies(g) for g in got)
    [row] = await recorded.until(OutboxState.SENT, 1)
    assert row.attempts == 3 and row.address == receiver.url


async def test_a_receiver_that_was_down_gets_every_event_once_back(api_with: Any,
                                                                   receiver: Receiver) -> None:
    receiver.down_until = asyncio.Event()
    api: Api = await api_with(webhooks=[{"url": receiver.url, "secret": SECRET,
                                         "events": ["message.received"]}])
    recorded = Recorded(api)
    for n in range(3):
        await api.customer(f"+1202555{n:04d}", text=f"message {n}")
    await receiver.wait(2)  # it was tried, and refused, at least twice
    receiver.down_until.set()
    accepted = await receiver.wait(3, accepted=True)
    texts = [g["event"]["data"]["message"]["text"] for g in accepted]
    assert texts == ["message 0", "message 1", "message 2"]  # in order, each once
    assert len(await recorded.until(OutboxState.SENT, 3)) == 3


async def test_410_stops_the_event_and_marks_no_address(api_with: Any,
                                                        receiver: Receiver) -> None:
    receiver.script = [410]
    api: Api = await api_with(webhooks=[{"url": receiver.url, "secret": SECRET,
                                         "events": ["message.received"]}])
    recorded = Recorded(api)
    await api.customer(text="first")
    await receiver.wait(1)
    await api.customer(text="second")
    [accepted] = await receiver.wait(1, accepted=True)
    assert accepted["event"]["data"]["message"]["text"] == "second"
    [failed] = await recorded.until(OutboxState.FAILED, 1)
    assert "410" in (failed.last_error or "") and failed.attempts == 1
    assert not await Identity.filter(undeliverable_reason__isnull=False).exists()


async def test_only_subscribed_events_and_no_rows_without_webhooks(api_with: Any,
                                                                   receiver: Receiver) -> None:
    api: Api = await api_with(webhooks=[{"url": receiver.url, "secret": SECRET,
                                         "events": ["customer.opted_out"]}])
    cid = await api.customer(text="hi")
    assert not await Outbox.filter(channel=Channel.WEBHOOK).exists()
    await api.post(f"/api/v1/customers/{cid}/consent",
                   {"kind": "notifications", "granted": False, "channel": "sms"})
    [got] = await receiver.wait(1, accepted=True)
    assert got["event"]["data"]["channel"] == "sms"


async def test_without_webhooks_there_is_no_webhook_channel(api: Api) -> None:
    await api.customer(text="hi")
    assert Channel.WEBHOOK not in api.core.dispatcher.channels
    assert not await Outbox.filter(channel=Channel.WEBHOOK).exists()


def test_webhook_config_is_checked() -> None:
    good = parse_settings({"webhooks": [{"url": "https://shop.example/hooks", "secret": SECRET,
                                         "events": ["message.received", "customer.opted_out"]}]})
    assert good.webhooks[0].wants(WebhookEvent.CUSTOMER_OPTED_OUT)
    assert not good.webhooks[0].wants(WebhookEvent.MESSAGE_SENT)
    for bad, words in (
            ({"url": "ftp://x", "secret": SECRET, "events": ["*"]}, "url"),
            ({"url": "https://x", "secret": "short", "events": ["*"]}, "16 characters"),
            ({"url": "https://x", "secret": SECRET, "events": ["order.made"]}, "order.made"),
            ({"url": "https://x", "secret": SECRET, "events": []}, "events")):
        with pytest.raises(ConfigError, match=words):
            parse_settings({"webhooks": [bad]})
    twice = {"url": "https://x", "secret": SECRET, "events": ["*"]}
    with pytest.raises(ConfigError, match="each url once"):
        parse_settings({"webhooks": [twice, twice]})


ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_verification_and_the_example_config_work() -> None:
    readme = (ROOT / "README.md").read_text()
    code = readme.split("To verify, in Python:", 1)[1].split("```python", 1)[1].split("```")[0]
    scope: dict[str, Any] = {}
    exec(code, scope)  # the receiver's few lines, as documented
    body = b'{"id":"evt_1","type":"message.received"}'
    header = signature_header(SECRET, int(time.time()), body)
    assert scope["verified"](SECRET, header, body)
    assert not scope["verified"](SECRET, header, body + b" ")
    assert not scope["verified"]("another-secret-0123456", header, body)
    assert not scope["verified"](SECRET, signature_header(SECRET, int(time.time()) - 3600,
                                                          body), body)

    example = (ROOT / "config.example.toml").read_text().split("# [[webhooks]]", 1)[1]
    table = "[[webhooks]]\n" + "\n".join(line.removeprefix("# ") for line in
                                          example.splitlines() if not line.startswith("# #"))
    settings = parse_settings(expand_env(tomllib.loads(table), {"WEBHOOK_SECRET": SECRET}))
    assert settings.webhooks[0].wants(WebhookEvent.CUSTOMER_OPTED_OUT)


async def test_a_receiver_answering_4xx_through_a_deploy_loses_no_event(
        api_with: Any, receiver: Receiver) -> None:
    # A proxy in front of a receiver being deployed answers all sorts for a while.
    receiver.script = [404, 401, 403, 502, 400]
    api: Api = await api_with(webhooks=[{"url": receiver.url, "secret": SECRET,
                                         "events": ["message.received"]}])
    recorded = Recorded(api)
    await api.customer(text="first")
    await receiver.wait(1)
    await api.customer(text="second")
    got = await receiver.wait(7)
    assert [g["status"] for g in got] == [404, 401, 403, 502, 400, 200, 200]
    texts = [g["event"]["data"]["message"]["text"] for g in got]
    assert texts == ["first"] * 6 + ["second"]  # the second waited for the first: in order
    assert len({g["event"]["id"] for g in got[:6]}) == 1  # one event, retried: dedupe works
    assert all(receiver_verifies(g) for g in got)
    rows = await recorded.until(OutboxState.SENT, 2)
    assert [r.attempts for r in rows] == [6, 1]
    assert not await Outbox.filter(channel=Channel.WEBHOOK, state=OutboxState.FAILED).exists()


async def test_an_event_is_given_up_after_webhook_max_attempts_and_the_next_goes(
        api_with: Any, receiver: Receiver) -> None:
    receiver.script = [404, 404]
    api: Api = await api_with(api={"webhook_max_attempts": 2}, webhooks=[{
        "url": receiver.url, "secret": SECRET, "events": ["message.received"]}])
    recorded = Recorded(api)
    await api.customer(text="first")
    await receiver.wait(1)
    await api.customer(text="second")
    [accepted] = await receiver.wait(1, accepted=True)
    assert accepted["event"]["data"]["message"]["text"] == "second"
    assert [g["status"] for g in receiver.got] == [404, 404, 200]
    [failed] = await recorded.until(OutboxState.FAILED, 1)
    assert "404" in (failed.last_error or "") and failed.attempts == 2
    assert not await Identity.filter(undeliverable_reason__isnull=False).exists()


async def test_a_message_the_channel_refuses_is_a_message_failed_event(
        api_with: Any, receiver: Receiver) -> None:
    api: Api = await api_with(webhooks=[{"url": receiver.url, "secret": SECRET,
                                         "events": ["message.sent", "message.failed"]}])
    ann = await api.customer("+12025550143", name="Ann")
    gone = await api.customer("+12025550144", name="Bob")
    api.sms.always["+12025550144"] = DeliveryResult.permanent("30006: landline, no SMS")
    refused = await api.post(f"/api/v1/customers/{gone}/messages", {"text": "Shipped"})
    await api.delivery(refused.body["id"])
    sent = await api.post(f"/api/v1/customers/{ann}/messages", {"text": "Shipped"})
    await receiver.wait(2, accepted=True)

    [failed] = receiver.of("message.failed")
    message = failed["data"]["message"]
    assert message["id"] == refused.body["id"] and message["customer_id"] == gone
    assert message["status"] == "failed" and "landline" in message["error"]
    EVENT_MODELS[WebhookEvent.MESSAGE_FAILED].model_validate(failed)
    [ok] = receiver.of("message.sent")
    assert ok["data"]["message"]["id"] == sent.body["id"]
    assert all(receiver_verifies(g) for g in receiver.got)
    # The API tells the same: the message failed, with the channel's reason.
    status = await api.get(f"/api/v1/messages/{refused.body['id']}")
    assert status.body["status"] == "failed" and "landline" in status.body["error"]


async def test_each_receiver_gets_events_at_its_own_rate(api_with: Any,
                                                         receiver: Receiver) -> None:
    async with serving(Receiver()) as fast:
        slow = receiver  # one POST every two seconds
        api: Api = await api_with(webhooks=[
            {"url": slow.url, "secret": SECRET, "events": ["message.received"],
             "rate_per_second": 0.5},
            {"url": fast.url, "secret": SECRET, "events": ["message.received"],
             "rate_per_second": 100}])
        for n in range(3):
            await api.customer(f"+1202555{n:04d}", text=f"message {n}")
        got = await fast.wait(3, accepted=True)
        # The fast receiver had all three while the slow one still waited for its second.
        assert [g["event"]["data"]["message"]["text"] for g in got] == [
            "message 0", "message 1", "message 2"]
        assert len(slow.got) == 1
        second = await slow.wait(2, accepted=True)
        # Held back, not lost, and in order: the same events, one by one.
        assert [g["event"]["id"] for g in second] == [g["event"]["id"] for g in got[:2]]
