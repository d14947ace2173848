"""The campaigns' public pages over real HTTP, with the whole service running: one-click
unsubscribe (a GET never unsubscribes, the POST does, RFC 8058), tracked links (a redirect,
counted once per person; a changed token 403 and no redirect; an expired one 410), and what the
messages carry (escaped names, how to stop, tracked links and buttons)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest_asyncio
from aiohttp import web

from crm.app import App
from crm.models import AuditLog, Campaign, CampaignRecipient
from crm.services import Core
from crm.types import CampaignState, Channel, OutboundMessage
from tests.crm.campaigns.conftest import campaign_settings, person
from tests.support.clock import TravelClock
from tests.support.consent import takes_marketing
from tests.support.fake_channel import FakeRuntime, FakeSender

SALE = "https://shop.example/sale?a=1&b=2"
TG_SALE = SALE.replace("&", "&amp;")  # Telegram's HTML wants the & written so


@dataclass
class Running:
    app: App
    base: str
    http: aiohttp.ClientSession
    email: FakeSender
    telegram: FakeSender
    clock: TravelClock

    @property
    def core(self) -> Core:
        assert self.app.core is not None
        return self.app.core


@pytest_asyncio.fixture
async def running(db: str) -> AsyncIterator[Running]:
    email, telegram = FakeSender(channel=Channel.EMAIL), FakeSender(channel=Channel.TELEGRAM)
    clock = TravelClock()

    def build_email(core: Core, web_app: web.Application) -> FakeRuntime:
        return FakeRuntime(email, channel=Channel.EMAIL)

    def build_telegram(core: Core, web_app: web.Application) -> FakeRuntime:
        return FakeRuntime(telegram, channel=Channel.TELEGRAM)

    settings = campaign_settings(db, campaigns={"tick_seconds": 0.2, "link_days": 30},
                                 bot={"company_name": "Acme"},
                                 http={"public_url": "https://crm.example"})
    async with App(settings, extra_channels=[build_email, build_telegram],
                   builtin_channels=False, manage_database=False, clock=clock) as app, \
            aiohttp.ClientSession() as http:
        assert app.http is not None
        yield Running(app, f"http://127.0.0.1:{app.http.port}", http, email, telegram, clock)


async def _sent(running: Running) -> tuple[OutboundMessage, OutboundMessage]:
    core = running.core
    ann = await person("Ann", email="ann@example.org")
    await person("<b>Bob</b> & co", telegram="4242")
    await core.segments.create("club", {"tag": "club"})
    campaign = await core.campaigns.create({
        "name": "Sale", "segment": "club", "channels": ["email", "telegram"],
        "email": {"subject": "Sale for {{ customer.first_name }}",
                  "text": f"Hello {{{{ customer.name }}}}, see {SALE}",
                  "html": f'<p>Hello {{{{ customer.name }}}}, <a href="{SALE}">see</a></p>'},
        "telegram": {"text": f'Hello <b>{{{{ customer.name }}}}</b>, <a href="{TG_SALE}">see</a>',
                     "buttons": [{"text": "Shop", "url": SALE}]}}, actor="test")
    await core.campaigns.schedule(campaign.id, actor="test")
    [mail] = await running.email.wait_sent(1)
    [tg] = await running.telegram.wait_sent(1)
    assert ann
    return mail, tg


async def test_messages_say_how_to_stop_escape_names_and_track_links(running: Running) -> None:
    mail, tg = await _sent(running)
    # Email: the footer link, and the one-click headers' url (the mail channel writes them).
    unsubscribe = mail.options["unsubscribe_url"]
    assert unsubscribe.startswith("https://crm.example/u/") and mail.options["list_unsubscribe"]
    assert unsubscribe in mail.text and "To unsubscribe" in mail.text
    assert mail.html is not None and unsubscribe in mail.html and SALE not in mail.html
    assert re.search(r'href="https://crm\.example/l/[\w.-]+"', mail.html)
    assert SALE not in mail.text and "https://crm.example/l/" in mail.text
    # Telegram: the name escaped in the HTML, /stop said, the button's link tracked too.
    assert tg.html is not None and "&lt;b&gt;Bob&lt;/b&gt; &amp; co" in tg.html
    assert "<b>Bob</b>" not in tg.html and tg.html.endswith("<i>To stop these messages, send "
                                                            "/stop.</i>")
    [button] = tg.options["buttons"]
    assert button["url"].startswith("https://crm.example/l/")


async def test_get_never_unsubscribes_and_the_one_click_post_does(running: Running) -> None:
    mail, _ = await _sent(running)
    path = mail.options["unsubscribe_url"].removeprefix("https://crm.example")
    recipient = await CampaignRecipient.get(channel="email")
    async with running.http.get(running.base + path) as page:
        body = await page.text()
        assert page.status == 200 and '<form method="post">' in body
        assert "Stop getting news and offers from Acme by email?" in body
        assert "form-action 'self'" in page.headers["Content-Security-Policy"]
    for _ in range(3):  # a scanner that opens it again and again
        async with running.http.get(running.base + path) as page:
            assert page.status == 200
    assert await takes_marketing(recipient.customer_id, Channel.EMAIL)
    async with running.http.post(running.base + path,
                                 data={"List-Unsubscribe": "One-Click"}) as done:
        assert done.status == 200
        assert "no more news and offers from Acme by email" in await done.text()
    assert not await takes_marketing(recipient.customer_id, Channel.EMAIL)
    assert await takes_marketing(recipient.customer_id, Channel.TELEGRAM)
    [audit] = await AuditLog.filter(action="consent.changed")
    assert audit.detail["source"] == "link" and audit.detail["channel"] == "email"
    assert (await CampaignRecipient.get(id=recipient.id)).opted_out_at is not None
    # The same POST again changes nothing more.
    async with running.http.post(running.base + path) as again:
        assert again.status == 200
    assert await AuditLog.filter(action="consent.changed").count() == 1


async def test_tracked_links_redirect_count_once_and_refuse_changed_or_old_tokens(
        running: Running) -> None:
    mail, tg = await _sent(running)
    link = re.search(r"https://crm\.example(/l/[\w.-]+)", mail.text)
    assert link is not None
    for _ in range(2):
        async with running.http.get(running.base + link.group(1),
                                    allow_redirects=False) as hop:
            assert hop.status == 302 and hop.headers["Location"] == SALE
    stats = await running.core.campaigns.stats((await Campaign.first()).id)  # type: ignore[union-attr]
    assert stats.by_channel["email"].clicked == 1 and stats.total.clicked == 1
    token = link.group(1).removeprefix("/l/")
    changed = token[:-1] + ("A" if token[-1] != "A" else "B")
    async with running.http.get(f"{running.base}/l/{changed}", allow_redirects=False) as bad:
        assert bad.status == 403 and "Location" not in bad.headers
    async with running.http.get(f"{running.base}/u/{token}") as wrong_page:
        assert wrong_page.status == 403  # a link token opens no unsubscribe page
    running.clock.advance(days=31)
    async with running.http.get(running.base + link.group(1),
                                allow_redirects=False) as old:
        assert old.status == 410 and "Location" not in old.headers
    assert tg.options["buttons"][0]["url"] != link.group(0)  # each person their own token


async def test_the_campaign_finishes_and_counts_in_metrics(running: Running) -> None:
    await _sent(running)
    campaign = await Campaign.first()
    assert campaign is not None
    for _ in range(100):
        if (await Campaign.get(id=campaign.id)).state is CampaignState.FINISHED:
            break
        await asyncio.sleep(0.05)
    assert (await Campaign.get(id=campaign.id)).state is CampaignState.FINISHED
    async with running.http.get(running.base + "/metrics") as page:
        text = await page.text()
    assert f'crm_campaign_recipients{{campaign="{campaign.id}",state="sent"}} 2.0' in text
    assert 'crm_campaigns{state="finished"} 1.0' in text
