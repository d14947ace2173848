"""The console in a real browser: Playwright driving Debian's Chromium (never `playwright
install`), the whole service running with the Telegram channel on the Bot API double.

One browser for the session, a new context (cookies, storage) per test; every wait has a
timeout, so a broken page fails instead of hanging.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from aiohttp import web
from playwright.async_api import BrowserContext, Page, expect

from crm.app import _telegram
from crm.models import Conversation, Manager, Message
from crm.types import ConversationStatus, Direction, Role
from tests.conftest import make_settings
from tests.support.browser import browser, context
from tests.support.browser import sign_in as sign_in_as
from tests.support.telegram_double import GROUP, TelegramDouble, telegram_settings, user
from tests.support.telegram_fixtures import telegram_server, tg
from tests.web.console.conftest import PASSWORD, Console, running

__all__ = ["browser", "context", "telegram_server", "tg"]

XSS = "<img src=x onerror=alert(1)>"


@pytest_asyncio.fixture
async def live(tg: TelegramDouble, db: str) -> AsyncIterator[Console]:
    settings = make_settings(db, telegram=telegram_settings(tg))
    async with running(settings, extra=[_telegram]) as console:
        yield console


async def sign_in(page: Page, console: Console, manager: Manager) -> None:
    await sign_in_as(page, console.base, manager.email or "", PASSWORD)


async def test_sign_in_with_a_password_and_sign_out(live: Console,
                                                    context: BrowserContext) -> None:
    ann = await live.staff("Ann")
    page = await context.new_page()
    await sign_in(page, live, ann)
    await expect(page.locator(".me")).to_contain_text("Ann")
    await page.click("#sign-out")
    await expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    await page.goto(f"{live.base}/console/inbox")
    await expect(page).to_have_url(re.compile(r"/console/sign-in"))


async def test_sign_in_with_the_link_the_bot_sends(live: Console, tg: TelegramDouble,
                                                   context: BrowserContext) -> None:
    await live.core.managers.add(9101, "Bob", Role.MANAGER)
    bob = user(9101, "Bob")
    tg.manager_says(9101, bob, "/web")
    [answer] = await tg.wait_for(lambda: [s for s in tg.sent_to(9101) if "/console/link/" in
                                          s.text])
    url = re.search(r"https?://[^\s<]+/console/link/[A-Za-z0-9_.-]+", answer.text)
    assert url is not None and "10 minutes" in answer.text
    path = url.group(0).split("/console/", 1)[1]
    page = await context.new_page()
    await page.goto(f"{live.base}/console/{path}")
    await expect(page.locator("h1")).to_contain_text("Sign in as Bob")
    await page.click("#use-link")
    await expect(page).to_have_url(re.compile(r"/console/inbox$"))
    await expect(page.locator(".me")).to_contain_text("Bob")
    # Once: the same link again is refused.
    other = await (await context.browser.new_context()).new_page()  # type: ignore[union-attr]
    response = await other.goto(f"{live.base}/console/{path}")
    assert response is not None and response.status == 410
    await other.context.close()
    # In the team's group the bot does not hand out links.
    tg.manager_says(GROUP, bob, "/web")
    await tg.wait_for(lambda: any("private chat" in s.text for s in tg.sent_to(GROUP)))


async def test_a_customer_message_appears_live_and_a_reply_reaches_them(
        live: Console, tg: TelegramDouble, context: BrowserContext) -> None:
    ann = await live.staff("Ann")
    page = await context.new_page()
    await sign_in(page, live, ann)
    await page.goto(f"{live.base}/console/inbox?list=open")
    await expect(page.locator("#inbox")).to_contain_text("Nothing here.")
    ready = await live.live()
    await page.wait_for_function("() => !!document.querySelector('[sse-connect]')")
    katya = user(1201, "Katya")
    tg.customer_says(katya, "Do you ship to Riga?")
    # No reload: the list is fetched again when the event comes.
    await expect(page.locator("#inbox .row .who")).to_have_text("Katya")
    await expect(page.locator("[data-count=open]")).to_have_text("1")
    assert not ready.empty()
    await page.click("#inbox .row .who")
    await expect(page.locator("#timeline")).to_contain_text("Do you ship to Riga?")
    await page.wait_for_selector("html[data-keys=on]", state="attached")
    await page.keyboard.press("r")
    await page.keyboard.type("Yes, in 3 days")
    await page.click("#send")
    sent = await tg.wait_for(lambda: [s for s in tg.sent_to(1201) if "3 days" in s.text])
    assert sent[0].text == "Yes, in 3 days"
    # The same reply, seen in the customer's topic of the managers' group.
    await tg.wait_for(lambda: any("Yes, in 3 days" in s.text for s in tg.sent_to(GROUP)))
    mine = page.locator("#timeline .dir-out").filter(has_text="Yes, in 3 days")
    await expect(mine.locator(".author")).to_have_text("Ann")
    # Its delivery shows live too: queued, then sent once the double took it.
    await expect(mine.locator(".delivery")).to_have_attribute("data-status", "sent")
    out = await Message.get(direction=Direction.OUT, author_kind="manager")
    assert out.author_id == ann.id


async def test_assign_and_close_in_the_browser(live: Console, context: BrowserContext) -> None:
    ann = await live.staff("Ann")
    bob = await live.staff("Bob")
    cid = await live.customer("+12025550201", "please help", name="Lena")
    page = await context.new_page()
    await sign_in(page, live, ann)
    await page.goto(f"{live.base}/console/customers/{cid}")
    await page.select_option("select[name=manager_id]", str(bob.id))
    await page.click("#assign")
    await expect(page.locator("#state")).to_contain_text("assigned to Bob")
    await page.wait_for_selector("html[data-keys=on]", state="attached")
    await page.keyboard.press("e")  # the keyboard's close
    await expect(page.locator("#state")).to_contain_text("closed")
    conv = await Conversation.get(customer_id=cid)
    assert conv.assignee_id == bob.id and conv.status is ConversationStatus.CLOSED
    await expect(page.locator("#reopen")).to_be_visible()


async def test_a_hostile_name_is_shown_as_text(live: Console, context: BrowserContext) -> None:
    ann = await live.staff("Ann")
    cid = await live.customer("+12025550211", XSS, name=XSS)
    page = await context.new_page()
    await sign_in(page, live, ann)
    await page.goto(f"{live.base}/console/inbox?list=open")
    await expect(page.locator("#inbox .row .who")).to_have_text(XSS)
    await page.goto(f"{live.base}/console/customers/{cid}")
    await expect(page.locator("#customer-name")).to_contain_text(XSS)
    await expect(page.locator("#timeline .text")).to_have_text(XSS)
    assert await page.locator("img").count() == 0  # no element was made from the name


async def test_a_cross_site_form_cannot_act(live: Console, context: BrowserContext) -> None:
    """A page of another site posts to the console while Ann is signed in: refused, nothing
    stored (the cookie is SameSite=Lax, and the form carries no token)."""
    ann = await live.staff("Ann")
    cid = await live.customer("+12025550221", "hi")
    page = await context.new_page()
    await sign_in(page, live, ann)
    target = f"{live.base}/console/customers/{cid}/note"
    evil = web.Application()

    async def form(_request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=(
            f'<form id="f" method="post" action="{target}"><input name="text" '
            'value="forged note"></form><button id="go" onclick="f.submit()">go</button>'))

    evil.router.add_get("/", form)
    runner = web.AppRunner(evil)
    await runner.setup()
    site = web.TCPSite(runner, "localhost", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await page.goto(f"http://localhost:{port}/")
        async with page.expect_response(target) as info:
            await page.click("#go")
        response: Any = await info.value
        assert response.status in (401, 403)
    finally:
        await runner.cleanup()
    assert await Message.filter(direction=Direction.NOTE).count() == 0
