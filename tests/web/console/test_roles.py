"""The roles in the console over HTTP: where each role lands, what its navigation offers, and
the campaign-scheduling rule, checked by the console's own guard before any campaign page
exists (the campaign pages come with the campaigns and are guarded the same way)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from crm.roles import Permission
from crm.types import Role
from tests.web.console.conftest import Browser, Console
from web.console.app import PREFIX, build_console
from web.console.guard import Visit, staff


@asynccontextmanager
async def scheduling_action(console: Console) -> AsyncIterator[str]:
    """The console (same services, same sessions) with a campaign-scheduling action behind
    `Permission.CAMPAIGN_SCHEDULE`, on a port of its own; yields its address."""

    @staff(Permission.CAMPAIGN_SCHEDULE)
    async def schedule(visit: Visit) -> web.Response:
        return web.Response(text=f"scheduled by {visit.manager.name}")

    app = build_console(console.core, console.app.live)
    app.router.add_post("/campaigns/{campaign_id}/schedule", schedule)
    root = web.Application()
    root.add_subapp(PREFIX, app)
    runner = web.AppRunner(root, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("role", "allowed"), [
    (Role.LEAD, False), (Role.MANAGER, False), (Role.MARKETER, True), (Role.ADMIN, True),
])
async def test_who_may_schedule_a_campaign(console: Console, role: Role, allowed: bool) -> None:
    who = await console.staff("Who", role)
    browser = await console.signed_in(who)
    await browser.get("/console/customers")  # the session's form token
    async with scheduling_action(console) as base:
        # The same cookie jar: cookies are per host, not per port.
        there = Browser(base, browser.http, csrf=browser.csrf)
        done = await there.post("/console/campaigns/1/schedule")
        assert done.status == (200 if allowed else 403), done.text
        if allowed:
            assert done.text == "scheduled by Who"
        else:
            assert "Your role may not open this page or do this." in done.text
        # The token is still checked first: no token, no action, whatever the role.
        assert (await there.post("/console/campaigns/1/schedule", csrf=None)).status == 403


@pytest.mark.parametrize(("role", "home", "links"), [
    (Role.MANAGER, "/console/inbox", {"inbox", "customers", "orders"}),
    (Role.LEAD, "/console/inbox", {"inbox", "customers", "orders", "reports"}),
    (Role.MARKETER, "/console/customers", {"customers", "reports"}),
    (Role.ADMIN, "/console/inbox", {"inbox", "customers", "orders", "reports", "team"}),
])
async def test_each_role_lands_on_its_first_page(console: Console, role: Role, home: str,
                                                 links: set[str]) -> None:
    who = await console.staff("Who", role)
    browser = await console.signed_in(who)
    landing = await browser.get("/console/")
    assert landing.status == 303 and landing.headers["Location"] == home
    page = await browser.get(home)
    nav = page.text.split("<nav>", 1)[1].split("</nav>", 1)[0]
    shown = {name for name in ("inbox", "customers", "orders", "reports", "team")
             if f'href="/console/{name}"' in nav}
    assert shown == links
    # A marketer never opens the inbox, nor its live stream.
    inbox = await browser.get("/console/inbox")
    assert inbox.status == (200 if "inbox" in links else 403)
    assert ('sse-connect="/console/events"' in page.text) is ("inbox" in links)
