"""A marketer's campaign in a real browser: Playwright driving Debian's Chromium, the whole
service running with Telegram on the Bot API double and email on Dovecot and aiosmtpd.

She builds a segment (its count and sample as she types, a hostile name shown as text), saves
it, writes a campaign with its preview per channel (the mail in a sandboxed frame that runs no
script), sends herself a test, schedules it, and watches the results page count the sends
while they go out, without a reload. The browser and its per-test contexts are
tests/web/console/test_browser.py's."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from playwright.async_api import BrowserContext, Page, expect

from channels.email import build
from crm.apikeys import Scope
from crm.app import _telegram
from crm.models import Campaign, Customer, Identity, Manager
from crm.types import CampaignState, Channel, Role
from tests.channels.conftest import dovecot, smtp, tls_files
from tests.channels.email.conftest import FAST, email_settings
from tests.conftest import make_settings
from tests.support.dovecot import Dovecot
from tests.support.smtp import SmtpServer
from tests.support.telegram_double import TelegramDouble, telegram_settings
from tests.web.console.conftest import PASSWORD, Console, running
from tests.web.console.test_browser import XSS, browser, context, telegram_server, tg

__all__ = ["browser", "context", "dovecot", "smtp", "telegram_server", "tg", "tls_files"]


@pytest_asyncio.fixture
async def everywhere(tg: TelegramDouble, dovecot: Dovecot, smtp: SmtpServer, db: str,
                     tmp_path: Path) -> AsyncIterator[Console]:
    """The service with Telegram (the double) and email (Dovecot, aiosmtpd); campaigns tick
    five times a second and keep no quiet hours, so the test does not wait for the morning."""
    mail = email_settings(db, dovecot, smtp, dovecot.add_user(), tmp_path)
    settings = make_settings(db, telegram=telegram_settings(tg),
                             campaigns={"tick_seconds": 0.2, "quiet_hours": ""})
    settings = settings.model_copy(update={"email": mail.email})

    def email(core: Any, web_app: Any) -> Any:
        return build(core, web_app, tuning=FAST)

    async with running(settings, extra=[_telegram, email]) as console:
        yield console


async def _customer(name: str, tags: list[str], **addresses: str) -> int:
    customer = await Customer.create(name=name, tags=tags, language="en")
    for channel, address in addresses.items():
        await Identity.create(customer_id=customer.id, channel=Channel(channel),
                              address=address)
    return customer.id


async def _sign_in(page: Page, console: Console, manager: Manager) -> None:
    await page.goto(f"{console.base}/console/sign-in")
    await page.fill("input[name=email]", manager.email or "")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile("/console/campaigns$"))


async def _calm(page: Page, selector: str) -> None:
    """htmx is done with the element: swapped, and the new content's own htmx attributes
    taken in (htmx does that as it settles, a moment after the swap)."""
    await expect(page.locator(selector)).not_to_have_class(
        re.compile(r"htmx-(request|swapping|settling)"))


def _problems(page: Page) -> tuple[list[str], list[str]]:
    """What went wrong in the page (a CSP refusal, a script error, a request of ours that
    failed), and apart from it the scripts the mail's sandbox refused to run."""
    seen: list[str] = []
    blocked: list[str] = []

    def console_message(m: Any) -> None:
        if m.type != "error" or m.text.startswith("Failed to load resource"):
            return
        (blocked if "sandboxed" in m.text and "allow-scripts" in m.text else seen).append(
            m.text)

    page.on("console", console_message)
    page.on("pageerror", lambda e: seen.append(str(e)))
    page.on("response", lambda r: seen.append(f"{r.status} {r.url}") if r.status >= 400
            and not r.url.endswith("/favicon.ico") else None)
    return seen, blocked


async def test_a_marketer_builds_a_segment_and_runs_a_campaign_to_telegram_and_email(
        everywhere: Console, tg: TelegramDouble, smtp: SmtpServer,
        context: BrowserContext) -> None:
    console = everywhere
    await _customer("Katya Ivanova", ["club"], telegram="1501")
    await _customer(XSS, ["club"], telegram="1502")
    await _customer("Lena Smith", ["club"], email="lena@customer.org")
    await _customer("Zed", ["other"], telegram="1503")
    mia = await console.staff("Mia", Role.MARKETER, telegram_user_id=4242)
    page = await context.new_page()
    errors, blocked = _problems(page)
    await _sign_in(page, console, mia)

    # The segment: the count and ten of them as she types; saved.
    await page.click("header nav a[href='/console/segments']")
    await page.click("#new-segment")
    await expect(page.locator("#segment-count")).to_have_attribute("data-count", "4")
    await page.fill("#segment-name", "spring-club")
    await page.fill("input[name='r1.value']", "club")
    await expect(page.locator("#segment-count")).to_have_attribute("data-count", "3")
    await expect(page.locator("#segment-sample .who").nth(1)).to_have_text(XSS)
    assert await page.locator("img").count() == 0  # the name made no element
    await page.click(".add-row")
    await expect(page.locator("select[name='r2.kind']")).to_have_count(1)
    await _calm(page, "#builder")
    await page.select_option("select[name='r2.kind']", "reachable")
    await expect(page.locator("input[name='r2.value']")).to_have_attribute(
        "list", "dl-channels")
    await _calm(page, "#builder")
    await page.fill("input[name='r2.value']", "telegram")
    await expect(page.locator("#segment-count")).to_have_attribute("data-count", "2")
    await page.fill("input[name='r2.value']", "telegram, email")
    await expect(page.locator("#segment-count")).to_have_attribute("data-count", "3")
    await page.click("#save-segment")
    await expect(page.locator("#saved")).to_be_visible()
    segment = await console.core.segments.get("spring-club")
    assert segment.filters == {"all": [{"tag": "club"}, {"reachable": ["telegram", "email"]}]}

    # The campaign, previewed per channel as she writes it.
    await page.click("#campaign-for-segment")
    await expect(page.locator("#campaign-segment")).to_have_value("spring-club")
    await page.fill("#campaign-name", "Spring sale")
    await page.select_option("#campaign-ch3", "")
    await page.fill("#A-telegram-text", "<b>Hi {{ customer.first_name }}</b>, spring sale!")
    await page.fill("#A-email-subject", "Spring sale, {{ customer.first_name }}")
    await page.fill("#A-email-text", "Hi {{ customer.first_name }}, spring sale!")
    await page.fill("#A-email-html", "<script>alert('mail')</script><p id='hello'>Hello "
                                     "<b>{{ customer.first_name }}</b></p>")
    preview = page.locator("#campaign-preview")
    await expect(preview.locator(".tg-bubble b")).to_have_text("Hi Katya")
    await expect(preview.locator("#reach [data-reach=telegram]")).to_have_attribute(
        "data-n", "2")
    await expect(preview.locator("#reach [data-reach=email]")).to_have_attribute("data-n", "1")
    frame = preview.locator("iframe.mail")
    await expect(frame).to_have_attribute("sandbox", "")
    await expect(page.frame_locator("iframe.mail").locator("#hello")).to_have_text(
        re.compile(r"^Hello Katya"))
    await expect(preview.locator(".mail-subject")).to_have_text("Spring sale, Katya")
    await _calm(page, "#campaign-preview")
    await page.select_option("#preview-for", label=XSS)
    await expect(preview.locator(".tg-bubble b")).to_have_text(f"Hi {XSS.split()[0]}")
    assert await page.locator("img").count() == 0
    await page.click("#save-campaign")
    await expect(page.locator("#campaign-state")).to_have_attribute("data-state", "draft")
    campaign = await Campaign.get(name="Spring sale")

    # A test to herself: her Telegram chat, her email address.
    await page.click("#test")
    await expect(page.locator("#done")).to_have_attribute("data-done", "tested")
    [mine] = await tg.wait_for(lambda: tg.sent_to(4242))
    assert mine.text.startswith("<b>Hi Mia</b>, spring sale!") and mine.parse_mode == "HTML"
    [mail] = await smtp.wait_for("mia@example.com")
    assert mail.mail["Subject"] == "Spring sale, Mia"

    # Scheduled now; the results page counts the sends as they go, without a reload.
    tg.hold_after = len(tg.sent) + 1  # the double holds Telegram's sends after one more
    await page.click("#schedule")
    await expect(page.locator("#done")).to_have_attribute("data-done", "scheduled")
    await page.click("#results-link")
    figures = page.locator("#figures")
    await expect(figures).to_have_attribute("data-state", "sending")
    sent = figures.locator("[data-slice=total] [data-figure=sent]")
    assert int(await sent.inner_text()) < 3
    tg.release.set()
    await expect(figures).to_have_attribute("data-state", "finished", timeout=30_000)
    await expect(sent).to_have_text("3")
    await tg.wait_for(lambda: tg.sent_to(1501) and tg.sent_to(1502))
    await smtp.wait_for("lena@customer.org")
    # Each once; Zed is not in the segment.
    assert (len(tg.sent_to(1501)), len(tg.sent_to(1502)), len(tg.sent_to(1503))) == (1, 1, 0)
    assert len(smtp.to("lena@customer.org")) == 1
    await page.wait_for_function(
        "() => document.getElementById('charts').dataset.sent === '3'")
    funnel = await page.evaluate(
        "() => Chart.getChart(document.getElementById('funnel-channel')).data.datasets"
        ".map(d => [d.label, d.data])")
    assert dict(funnel) == {"email": [1, 1, 0, 0, 0, 0], "telegram": [2, 2, 0, 0, 0, 0]}
    _row, key = await console.core.apikeys.create("read", [Scope.CAMPAIGNS_READ.value])
    answer = await page.request.get(f"{console.base}/api/v1/campaigns/{campaign.id}/stats",
                                    headers={"Authorization": f"Bearer {key}"})
    api = await answer.json()
    assert api["total"]["sent"] == 3 and api["by_channel"]["telegram"]["sent"] == 2
    shown = await page.eval_on_selector_all(
        "[data-slice=total] [data-figure]", "els => els.map(e => [e.dataset.figure, "
        "Number(e.textContent)])")
    assert dict(shown) == {k: v for k, v in api["total"].items() if isinstance(v, int)}
    assert (await Campaign.get(id=campaign.id)).state is CampaignState.FINISHED
    assert errors == [], errors  # no CSP refusal, no script error, no failed request
    assert blocked, "the mail's script was not refused by its sandbox"
