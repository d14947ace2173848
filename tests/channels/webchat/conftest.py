"""The whole service (crm.app.App) with the web chat on, on a port of its own so that its
public_url (file links, the widget's address) is right; email and SMS are test senders that
record what they would send (the codes that confirm an address)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import web

from crm.app import App
from crm.clock import Clock, utcnow
from crm.events import DeliveryChanged
from crm.models import Manager
from crm.services import Core
from crm.types import Channel, DeliveryStatus, Role
from tests.conftest import make_settings
from tests.support import procs
from tests.support.fake_channel import FakeRuntime, FakeSender
from tests.support.webchat_visitor import Visitor

SHOP = "https://shop.example"  # the allowed origin: the shop's site the widget is on
ELSEWHERE = "https://evil.example"


def webchat_settings(db: str, port: int, **sections: dict[str, Any]) -> Any:
    webchat = {"enabled": True, "allowed_origins": [SHOP], **sections.pop("webchat", {})}
    return make_settings(db, http={"port": port, "public_url": f"http://127.0.0.1:{port}"},
                         webchat=webchat, bot={"company_name": "Acme",
                                               **sections.pop("bot", {})}, **sections)


@dataclass
class Chat:
    app: App
    base: str
    email: FakeSender
    sms: FakeSender
    http: aiohttp.ClientSession
    visitors: list[Visitor] = field(default_factory=list)
    deliveries: list[DeliveryChanged] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def core(self) -> Core:
        assert self.app.core is not None
        return self.app.core

    async def visitor(self, origin: str | None = SHOP, language: str = "en") -> Visitor:
        visitor = await Visitor(self.http, self.base, origin, language).start()
        self.visitors.append(visitor)
        return visitor

    async def manager(self, name: str = "Ann") -> Manager:
        return await self.core.managers.add(None, name, Role.MANAGER,
                                            email=f"{name.lower()}@example.com")

    async def _delivered(self, event: DeliveryChanged) -> None:
        async with self.changed:
            self.deliveries.append(event)
            self.changed.notify_all()

    async def status(self, message_id: int, status: DeliveryStatus,
                     timeout: float = 15) -> None:
        """Wait until the message's delivery became `status` (committed)."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: any(
                e.message_id == message_id and e.status is status for e in self.deliveries)),
                timeout)


@asynccontextmanager
async def running(settings: Any, clock: Clock = utcnow,
                  extra: list[Any] | None = None) -> AsyncIterator[Chat]:
    email, sms = FakeSender(channel=Channel.EMAIL), FakeSender(channel=Channel.SMS)

    def build_email(core: Core, web_app: web.Application) -> FakeRuntime:
        return FakeRuntime(email, channel=Channel.EMAIL)

    def build_sms(core: Core, web_app: web.Application) -> FakeRuntime:
        return FakeRuntime(sms, channel=Channel.SMS)

    from crm.app import _webchat

    async with App(settings, extra_channels=[build_email, build_sms, _webchat, *(extra or [])],
                   builtin_channels=False, manage_database=False, clock=clock) as app, \
            aiohttp.ClientSession() as http:
        assert app.http is not None and app.core is not None
        chat = Chat(app, f"http://127.0.0.1:{app.http.port}", email, sms, http)
        app.core.bus.subscribe(DeliveryChanged, chat._delivered)
        try:
            yield chat
        finally:
            for visitor in chat.visitors:
                await visitor.close()


@pytest_asyncio.fixture
async def chat(db: str) -> AsyncIterator[Chat]:
    async with running(webchat_settings(db, procs.free_port())) as c:
        yield c


@pytest_asyncio.fixture
async def chat_with(db: str) -> AsyncIterator[Callable[..., Awaitable[Chat]]]:
    """`await chat_with(clock=..., webchat={...}, files={...})`: settings of its own."""
    stack: list[Any] = []

    async def start(clock: Clock = utcnow, **sections: Any) -> Chat:
        cm = running(webchat_settings(db, procs.free_port(), **sections), clock)
        stack.append(cm)
        return await cm.__aenter__()

    yield start
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)
