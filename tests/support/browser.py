"""A real browser for the tests of web pages: Playwright driving Debian's Chromium (never
`playwright install`). One browser for the session, a new context (cookies, storage) per test;
every wait has a timeout, so a broken page fails instead of hanging. A context fails its test
when a page opened an alert or another dialog: a page ran a script it should not have."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 15_000
expect.set_options(timeout=WAIT_MS)

__all__ = ["browser", "context", "sign_in"]


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    # A missing browser is a failure here, never a skip: scripts/test installs Debian's.
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    ctx.set_default_timeout(WAIT_MS)
    dialogs: list[str] = []
    ctx.on("page", lambda page: page.on("dialog", lambda d: dialogs.append(d.message)))
    yield ctx
    await ctx.close()
    assert dialogs == [], f"a page ran a script it should not have: {dialogs}"


async def sign_in(page: Page, base: str, email: str, password: str) -> None:
    """Sign in to the web console with a password, from its inbox's address."""
    await page.goto(f"{base}/console/inbox")
    await expect(page).to_have_url(re.compile(r"/console/sign-in"))
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/console/inbox$"))
