"""The whole service in-process (crm.app.App) with the API mounted, reached over real HTTP."""

from __future__ import annotations

import asyncio
import json as json_module
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import web

from crm.apikeys import Scope
from crm.app import App
from crm.clock import Clock, utcnow
from crm.config import Settings, WebhookSettings
from crm.events import DeliveryChanged
from crm.models import Message
from crm.services import Core
from crm.types import Channel, DeliveryStatus, InboundMessage
from tests.conftest import make_settings
from tests.support.fake_channel import FakeRuntime, FakeSender

ALL = tuple(Scope)


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any
    text: str
    content_type: str


@dataclass
class Api:
    """A client of the running API; `key` is used unless a call says otherwise."""

    app: App
    base: str
    http: aiohttp.ClientSession
    key: str
    sms: FakeSender
    test: FakeSender
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def core(self) -> Core:
        assert self.app.core is not None
        return self.app.core

    async def call(self, method: str, path: str, *, json: Any = None, data: Any = None,
                   key: str | None = "default", headers: dict[str, str] | None = None,
                   params: Any = None) -> Answer:
        sent = dict(headers or {})
        if key is not None:
            sent.setdefault("Authorization", f"Bearer {self.key if key == 'default' else key}")
        url = path if path.startswith("http") else f"{self.base}{path}"
        async with self.http.request(method, url, json=json, data=data, headers=sent,
                                     params=params) as r:
            raw = await r.read()
            text = raw.decode("utf-8", errors="replace")
            body = None
            if r.content_type in ("application/json", "application/problem+json"):
                body = json_module.loads(raw)
            return Answer(r.status, body, r.headers, text, r.content_type)

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Answer:
        return await self.call("POST", path, json=json, **kw)

    async def delivery(self, message_id: int, timeout: float = 15) -> DeliveryChanged:
        """Wait for the outcome of a message's send (recorded and committed)."""
        done: asyncio.Future[DeliveryChanged] = asyncio.get_running_loop().create_future()

        async def seen(event: DeliveryChanged) -> None:
            if event.message_id == message_id and not done.done():
                done.set_result(event)

        self.core.bus.subscribe(DeliveryChanged, seen)
        message = await Message.get(id=message_id)
        if message.delivery_status is not DeliveryStatus.QUEUED:
            return DeliveryChanged(message_id, None, message.customer_id, message.channel,
                                   message.delivery_status, message.delivery_error)
        return await asyncio.wait_for(done, timeout)

    async def key_with(self, *scopes: Scope, name: str | None = None) -> str:
        _row, key = await self.core.apikeys.create(
            name or "k-" + "-".join(s.value.replace(":", "_") for s in scopes) or "none",
            scopes)
        return key

    async def customer(self, sender: str = "+12025550143", text: str = "hello",
                       channel: Channel = Channel.SMS, name: str | None = None,
                       external_id: str | None = None) -> int:
        result = await self.core.timeline.ingest(InboundMessage(
            channel, external_id or f"{channel.value}-{sender}-{text}", sender, text=text,
            sender_name=name))
        return result.customer_id


ApiFactory = Callable[..., Any]


@asynccontextmanager
async def running(settings: Settings, clock: Clock = utcnow) -> AsyncIterator[Api]:
    sms, test = FakeSender(channel=Channel.SMS), FakeSender()

    def build_sms(core: Core, web_app: web.Application) -> FakeRuntime:
        return FakeRuntime(sms, channel=Channel.SMS)

    def build_test(core: Core, web_app: web.Application) -> FakeRuntime:
        return FakeRuntime(test)

    async with App(settings, extra_channels=[build_sms, build_test], builtin_channels=False,
                   manage_database=False, clock=clock) as app, aiohttp.ClientSession() as http:
        assert app.http is not None and app.core is not None
        _row, key = await app.core.apikeys.create("default", ALL)
        yield Api(app, f"http://127.0.0.1:{app.http.port}", http, key, sms, test)


@pytest_asyncio.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with running(settings) as client:
        yield client


@pytest_asyncio.fixture
async def api_with(db: str) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """`await api_with(api={...}, webhooks=[...])`: the service with settings of the test's own."""
    stack: list[Any] = []

    async def start(webhooks: list[dict[str, Any]] | None = None, **sections: Any) -> Api:
        settings = make_settings(db, **sections).model_copy(update={
            "webhooks": [WebhookSettings.model_validate(w) for w in webhooks or []]})
        cm = running(settings)
        stack.append(cm)
        return await cm.__aenter__()

    yield start
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)
