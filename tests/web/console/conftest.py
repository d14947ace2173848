"""The whole service (crm.app.App) with the console mounted, and staff members who sign in with
real HTTP: a cookie jar per person, forms posted with the token their page carried."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import web

from crm.app import App
from crm.clock import Clock, utcnow
from crm.config import Settings
from crm.live import LiveEvent
from crm.models import Manager
from crm.services import Core
from crm.types import Channel, InboundMessage, Role
from tests.conftest import make_settings
from tests.support.fake_channel import FakeRuntime, FakeSender

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Page:
    status: int
    text: str
    headers: Any
    url: str

    @property
    def csrf(self) -> str:
        found = _CSRF.search(self.text)
        assert found, f"no form token on {self.url}"
        return found.group(1)


@dataclass
class Browser:
    """One person's HTTP client: its own cookies, no automatic redirects."""

    base: str
    http: aiohttp.ClientSession
    csrf: str = ""

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Page:
        async with self.http.get(self.base + path, allow_redirects=False,
                                 headers=headers) as r:
            page = Page(r.status, await r.text(), r.headers, path)
        found = _CSRF.search(page.text)
        if found and "/sign-out" in page.text:
            self.csrf = found.group(1)
        return page

    async def post(self, path: str, data: dict[str, Any] | None = None, *,
                   csrf: str | None = "session", headers: dict[str, str] | None = None) -> Page:
        form = dict(data or {})
        if csrf == "session":
            if not self.csrf:
                await self.get("/console/customers")
            form["csrf"] = self.csrf
        elif csrf is not None:
            form["csrf"] = csrf
        async with self.http.post(self.base + path, data=form, allow_redirects=False,
                                  headers=headers) as r:
            return Page(r.status, await r.text(), r.headers, path)

    def cookie(self, name: str) -> Any:
        return next((c for c in self.http.cookie_jar if c.key == name), None)


@dataclass
class Console:
    app: App
    base: str
    sms: FakeSender
    test: FakeSender
    browsers: list[Browser] = field(default_factory=list)

    @property
    def core(self) -> Core:
        assert self.app.core is not None
        return self.app.core

    def browser(self) -> Browser:
        browser = Browser(self.base, aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True)))
        self.browsers.append(browser)
        return browser

    async def staff(self, name: str, role: Role = Role.MANAGER, *, email: str | None = None,
                    password: str = PASSWORD, telegram_user_id: int | None = None) -> Manager:
        manager = await self.core.managers.add(
            telegram_user_id, name, role,
            email=email or f"{name.lower().replace(' ', '.')}@example.com")
        await self.core.managers.set_password(manager, password)
        return manager

    async def signed_in(self, manager: Manager, password: str = PASSWORD) -> Browser:
        browser = self.browser()
        page = await browser.get("/console/sign-in")
        done = await browser.post("/console/sign-in", {
            "email": manager.email, "password": password, "next": "/console/"},
            csrf=page.csrf)
        assert done.status == 303, done.text
        return browser

    async def customer(self, sender: str = "+12025550143", text: str = "hello",
                       channel: Channel = Channel.SMS, name: str | None = None) -> int:
        result = await self.core.timeline.ingest(InboundMessage(
            channel, f"{channel.value}-{sender}-{text}", sender, text=text, sender_name=name))
        return result.customer_id

    async def live(self) -> asyncio.Queue[LiveEvent]:
        assert self.app.live is not None
        return self.app.live.subscribe()


@asynccontextmanager
async def running(settings: Settings, clock: Clock = utcnow,
                  extra: list[Any] | None = None) -> AsyncIterator[Console]:
    sms, test = FakeSender(channel=Channel.SMS), FakeSender()

    def build_sms(core: Core, web_app: web.Application) -> FakeRuntime:
        return FakeRuntime(sms, channel=Channel.SMS)

    def build_test(core: Core, web_app: web.Application) -> FakeRuntime:
        return FakeRuntime(test)

    console: Console | None = None
    async with App(settings, extra_channels=[build_sms, build_test, *(extra or [])],
                   builtin_channels=False, manage_database=False, clock=clock) as app:
        assert app.http is not None
        console = Console(app, f"http://127.0.0.1:{app.http.port}", sms, test)
        try:
            yield console
        finally:
            for browser in console.browsers:
                await browser.http.close()


@pytest_asyncio.fixture
async def console(settings: Settings) -> AsyncIterator[Console]:
    async with running(settings) as c:
        yield c


@pytest_asyncio.fixture
async def console_with(db: str) -> AsyncIterator[Callable[..., Awaitable[Console]]]:
    """`await console_with(clock=..., console={...})`: the service with settings of its own."""
    stack: list[Any] = []

    async def start(clock: Clock = utcnow, **sections: Any) -> Console:
        cm = running(make_settings(db, **sections), clock)
        stack.append(cm)
        return await cm.__aenter__()

    yield start
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)
