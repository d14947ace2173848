"""The widget in a real browser (Playwright, Debian's Chromium), on a page of the shop's own site:
another origin than the service, served by a second HTTP server with a strict
Content-Security-Policy and hostile styles. The whole service runs with the Telegram channel on
the Bot API double and the web console, so a visitor's message is seen where managers are, and
a manager's answer comes back to the page live."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest_asyncio
from aiohttp import web
from playwright.async_api import BrowserContext, Page, expect

from crm.app import _telegram
from crm.i18n import t
from crm.models import Identity, Message
from crm.types import Channel, DeliveryStatus, Direction, Role
from tests.channels.webchat.conftest import Chat, running, webchat_settings
from tests.support import procs
from tests.support.browser import browser, context, sign_in
from tests.support.telegram_double import GROUP, TelegramDouble, telegram_settings, user
from tests.support.telegram_fixtures import telegram_server, tg

__all__ = ["browser", "context", "telegram_server", "tg"]

PASSWORD = "correct horse battery"
XSS = "<img src=x onerror=alert(1)>"
# A shop's careless global styles: the widget must not care.
HOSTILE_CSS = ("* { font-family: cursive !important; } button { display: none; } "
               "div { padding: 40px; } textarea { visibility: hidden; }")


@dataclass
class Shop:
    """The shop's site: one page with the widget's tag, on an origin of its own."""

    origin: str
    runner: web.AppRunner

    @property
    def page(self) -> str:
        return f"{self.origin}/"


@asynccontextmanager
async def shop_site(service: str, lang: str = "en") -> AsyncIterator[Shop]:
    port = procs.free_port()
    origin = f"http://127.0.0.1:{port}"  # another port: another origin than the service's

    async def page(_request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=(
            "<!doctype html><html><head><meta charset=utf-8><title>Socks</title>"
            '<link rel="stylesheet" href="/shop.css"></head><body><h1>Wool socks</h1>'
            f'<script src="{service}/webchat/widget.js" data-title="Acme help" '
            f'data-color="#aa3300" data-lang="{lang}" async></script></body></html>'),
            headers={"Content-Security-Policy": (
                f"default-src 'none'; script-src {service}; style-src 'self' {service}; "
                f"connect-src {service}; img-src {service}")})

    async def css(_request: web.Request) -> web.Response:
        return web.Response(text=HOSTILE_CSS, content_type="text/css")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/shop.css", css)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Shop(origin, runner)
    finally:
        await runner.cleanup()


@dataclass
class World:
    chat: Chat
    shop: Shop
    tg: TelegramDouble


@pytest_asyncio.fixture
async def world(tg: TelegramDouble, db: str) -> AsyncIterator[World]:
    port = procs.free_port()
    service = f"http://127.0.0.1:{port}"
    async with shop_site(service) as shop:
        settings = webchat_settings(db, port, webchat={"allowed_origins": [shop.origin]},
                                    telegram=telegram_settings(tg))
        async with running(settings, extra=[_telegram]) as chat:
            yield World(chat, shop, tg)


async def open_chat(page: Page, url: str) -> None:
    await page.goto(url)
    await page.click("#chatcrm-webchat .launcher")
    await expect(page.locator("#chatcrm-webchat .panel")).to_be_visible()


async def write(page: Page, text: str) -> None:
    await page.fill("#chatcrm-webchat textarea", text)
    await page.keyboard.press("Enter")


async def test_a_visitor_on_the_shops_page_and_a_manager_in_telegram(
        world: World, context: BrowserContext) -> None:
    chat, tg = world.chat, world.tg
    ann = await chat.core.managers.add(9101, "Ann", Role.MANAGER, email="ann@example.com")
    await chat.core.managers.set_password(ann, PASSWORD)
    page = await context.new_page()
    await open_chat(page, world.shop.page)
    widget = page.locator("#chatcrm-webchat")
    await expect(widget.locator(".title")).to_have_text("Acme help")
    await write(page, "Do you have them in blue? " + XSS)
    await expect(widget.locator(".msg.from-visitor")).to_contain_text("in blue?")
    # The dialogue's acknowledgement comes back over the stream.
    await expect(widget.locator(".msg.from-bot")).to_have_text(re.compile(
        re.escape(t("ack", "en"))))
    # The message is in the customer's topic of the managers' group, marked as web chat...
    thread = await tg.topic_of("Do you have them in blue?")
    assert "💬 web chat" in tg.topic_text(thread)
    # ... and in the console.
    desk = await context.browser.new_context()  # type: ignore[union-attr]
    console = await desk.new_page()
    await sign_in(console, chat.base, "ann@example.com", PASSWORD)
    await console.goto(f"{chat.base}/console/inbox?list=open")
    await expect(console.locator("#inbox .row .badge.ch-webchat")).to_have_text("webchat")
    await console.click("#inbox .row .who")
    await expect(console.locator("#timeline")).to_contain_text("Do you have them in blue?")
    # A manager answers in the topic: the widget shows it live, as text.
    tg.manager_says(GROUP, user(9101, "Ann"), f"Yes, navy and sky. {XSS}", thread)
    answer = widget.locator(".msg.from-team")
    await expect(answer).to_contain_text("Yes, navy and sky. " + XSS)
    assert await widget.locator("img").count() == 0  # nothing was made from the text
    # The page is open and on screen: delivered, then read, in the console too.
    out = await _answer()
    mine = console.locator("#timeline .dir-out").filter(has_text="navy and sky")
    await expect(mine.locator(".delivery")).to_have_attribute("data-status", "read")
    assert (await Message.get(id=out.id)).delivery_status is DeliveryStatus.READ
    # A reload keeps the history.
    await page.reload()
    await page.click("#chatcrm-webchat .launcher")
    await expect(widget.locator(".msg.from-visitor")).to_contain_text("in blue?")
    await expect(widget.locator(".msg.from-team")).to_contain_text("navy and sky")
    await desk.close()


async def _answer() -> Message:
    found = await Message.filter(direction=Direction.OUT, author_kind="manager").first()
    assert found is not None
    return found


async def test_the_menu_as_buttons(world: World, context: BrowserContext) -> None:
    page = await context.new_page()
    await open_chat(page, world.shop.page)
    widget = page.locator("#chatcrm-webchat")
    await widget.locator(".menu").click()
    buttons = widget.locator(".choices .choice")
    await expect(buttons).to_have_text(["Talk to a manager", "My orders", "Help", "Language",
                                        "Stop news and offers"])
    await buttons.filter(has_text="Stop news and offers").click()
    await expect(widget.locator(".msg.from-bot").last).to_have_text(re.compile(
        re.escape(t("opted_out_webchat", "en"))))
    await widget.locator(".menu").click()
    await expect(buttons.last).to_have_text("Get news and offers again")
    # The shop's hostile styles did not hide our buttons or fields.
    await expect(widget.locator("textarea")).to_be_visible()
    await expect(widget.locator(".send")).to_be_visible()


async def test_another_origin_is_refused(tg: TelegramDouble, db: str,
                                         context: BrowserContext) -> None:
    port = procs.free_port()
    service = f"http://127.0.0.1:{port}"
    async with shop_site(service) as shop, running(
            webchat_settings(db, port, webchat={"allowed_origins": ["https://shop.example"]})):
        page = await context.new_page()
        # The browser asks first (a preflight): refused, so the call itself never goes.
        async with page.expect_event("requestfailed", lambda r: r.url.endswith(
                "/webchat/session")) as info:
            await page.goto(shop.page)
        failed = await info.value
        assert failed.method == "POST" and "ERR_FAILED" in (failed.failure or "")
        await page.click("#chatcrm-webchat .launcher")
        async with page.expect_event("requestfailed", lambda r: r.url.endswith(
                "/webchat/messages")):
            await write(page, "let me in")
    assert await Identity.all().count() == 0
    assert await Message.all().count() == 0


async def test_a_forged_token_is_refused_and_the_chat_starts_again(
        world: World, context: BrowserContext) -> None:
    page = await context.new_page()
    await open_chat(page, world.shop.page)
    await write(page, "my secret order")
    widget = page.locator("#chatcrm-webchat")
    await expect(widget.locator(".msg.from-visitor")).to_contain_text("my secret order")
    key = f"chatcrm-webchat:{world.chat.base}"
    token = await page.evaluate(f"localStorage.getItem({key!r})")
    body, _, mac = token.rpartition(".")
    forged = f"{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    await page.evaluate(f"localStorage.setItem({key!r}, {forged!r})")
    refused: list[int] = []
    page.on("response", lambda r: refused.append(r.status)
            if r.url.endswith("/webchat/session") else None)
    await page.reload()
    await page.click("#chatcrm-webchat .launcher")
    await expect(widget.locator(".notice")).to_have_text(t("webchat_error_session", "en"))
    assert refused[:2] == [403, 200]  # the forged token, then a new visitor
    await expect(widget.locator(".empty")).to_be_visible()
    assert await widget.locator(".msg").count() == 0  # none of the first visitor's history
    assert await page.evaluate(f"localStorage.getItem({key!r})") not in (token, forged)
    assert await Identity.filter(channel=Channel.WEBCHAT).count() == 1
