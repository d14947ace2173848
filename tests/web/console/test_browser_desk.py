"""Orders, dashboards and roles in a real browser: Playwright driving Debian's Chromium, the
whole service running (with Telegram on the Bot API double where a customer is told).

The browser and its per-test contexts are tests/web/console/test_browser.py's."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from playwright.async_api import BrowserContext, Page, expect

from crm.apikeys import Scope
from crm.models import Campaign, Identity, Manager, Order, Outbox
from crm.orders.service import CustomerRef, OrderInput
from crm.types import CampaignState, Channel, Role
from tests.conftest import make_settings
from tests.support.reports_data import NOW, seed
from tests.support.telegram_double import GROUP, TelegramDouble, user
from tests.web.console.conftest import PASSWORD, Console, running
from tests.web.console.test_browser import browser, context, live, sign_in, telegram_server, tg
from tests.web.console.test_roles import draft

__all__ = ["browser", "context", "live", "telegram_server", "tg"]

MARCH = "from=2026-03-01&to=2026-03-31"


@pytest_asyncio.fixture
async def reports_console(db: str) -> AsyncIterator[Console]:
    """The service with the clock at the dataset's "now", so that "waiting now" is the same
    for the page and the API."""
    settings = make_settings(db, routing={"first_response_minutes": 5})
    async with running(settings, clock=lambda: NOW) as console:
        yield console


async def sign_in_to(page: Page, console: Console, manager: Manager, landing: str) -> None:
    await page.goto(f"{console.base}/console/sign-in")
    await page.fill("input[name=email]", manager.email or "")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(f"{landing}$"))


def _errors(page: Page) -> list[str]:
    """What went wrong in the page: a CSP refusal or a script error in its console, a request
    of ours that failed (the browser's own /favicon.ico aside)."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if m.type == "error"
            and not m.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda e: seen.append(str(e)))
    page.on("response", lambda r: seen.append(f"{r.status} {r.url}") if r.status >= 400
            and not r.url.endswith("/favicon.ico") else None)
    return seen


async def test_a_manager_moves_an_order_and_the_customer_is_told_once(
        live: Console, tg: TelegramDouble, context: BrowserContext) -> None:
    katya = user(1301, "Katya")
    tg.customer_says(katya, "Where is my order?")
    await tg.wait_for(lambda: any("Where is my order?" in s.text for s in tg.sent_to(GROUP)))
    identity = await Identity.get(channel=Channel.TELEGRAM, address="1301")
    await live.core.orders.put("K-77", OrderInput(
        customer=CustomerRef(customer_id=identity.customer_id), status="new",
        items=[{"name": "Teapot <glass>", "quantity": 1}], amount="25.00", currency="EUR"),
        source="api", actor="api:shop")
    ann = await live.staff("Ann")
    page = await context.new_page()
    errors = _errors(page)
    await sign_in(page, live, ann)
    await page.click("a[href='/console/orders']")
    await page.fill("#order-search", "k-77")
    await page.keyboard.press("Enter")
    await expect(page.locator(".order-row")).to_have_count(1)
    await page.click(".order-row .who")
    await expect(page.locator("#order-number")).to_have_text("Order K-77")
    await expect(page.locator(".item-name")).to_have_text("Teapot <glass>")
    await page.select_option("#new-status", "shipped")
    await page.fill("input[name=note]", "DHL 42")
    await page.click("#change-status")
    await expect(page.locator("#order-status")).to_have_attribute("data-status", "shipped")
    await expect(page.locator("#history .entry").first).to_contain_text("New → Shipped")
    await expect(page.locator("#history .entry").first).to_contain_text("Ann")
    [told] = await tg.wait_for(lambda: [s for s in tg.sent_to(1301) if "K-77" in s.text])
    assert "Shipped" in told.text
    # The same change sent again (a retry, a second click): no second message.
    token = await page.locator("input[name=csrf]").first.get_attribute("value")
    again = await page.request.post(f"{live.base}/console/orders/K-77/status",
                                    form={"csrf": token or "", "status": "shipped"},
                                    max_redirects=0)
    assert again.status == 303
    assert await Outbox.filter(idempotency_key__startswith="order:").count() == 1
    assert len([s for s in tg.sent_to(1301) if "K-77" in s.text]) == 1
    assert (await Order.get(number="K-77")).status == "shipped"
    assert errors == []


async def test_a_dashboard_draws_the_apis_figures(reports_console: Console,
                                                  context: BrowserContext) -> None:
    console = reports_console
    await seed()
    lena = await console.staff("Lena", Role.LEAD)
    _row, key = await console.core.apikeys.create("dash", [Scope.REPORTS_READ.value],
                                                  actor="test")
    page = await context.new_page()
    errors = _errors(page)
    await sign_in_to(page, console, lena, "/console/inbox")
    await page.click("a[href='/console/reports']")
    await expect(page).to_have_url(re.compile("/console/reports/overview$"))
    await page.goto(f"{console.base}/console/reports/overview?{MARCH}")
    await page.wait_for_selector("html[data-chart=done]", state="attached")
    api = await _api(page, console, key, f"/reports/overview?{MARCH}")
    # The chart is there, drawn from the API's series: 31 days of opened and closed.
    canvas = page.locator("#chart")
    await expect(canvas).to_have_attribute("data-points", "62")
    drawn = await page.evaluate(
        "() => Chart.getChart(document.getElementById('chart')).data.datasets"
        ".map(d => d.data)")
    series = api["chart"]["data"]["series"]
    assert drawn == [series["opened"], series["closed"]] and sum(series["opened"]) == 3
    box = await canvas.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    # The figures on the page are the API's.
    shown = await page.eval_on_selector_all(
        ".figure", "els => els.map(e => [e.dataset.figure, JSON.parse(e.dataset.value)])")
    assert dict(shown) == {k: f["value"] for k, f in api["figures"].items()}
    await expect(page.locator("[data-figure=first_response_median] .value")).to_have_text(
        "2 min")

    # The period picker: a month shows at once.
    await page.select_option("#period", "2026-02")
    await expect(page.locator("#report-title")).to_contain_text("2026-02-01 – 2026-02-28")
    await page.wait_for_selector("html[data-chart=done]", state="attached")

    # Drill-down from the chart: a manager's bar opens the waits behind it.
    await page.goto(f"{console.base}/console/reports/team?{MARCH}")
    await page.wait_for_selector("html[data-chart=done]", state="attached")
    team = await _api(page, console, key, f"/reports/team?{MARCH}")
    at = team["chart"]["data"]["x"].index("Olga")
    point = await page.evaluate(
        f"() => {{ const b = Chart.getChart(document.getElementById('chart'))"
        f".getDatasetMeta(0).data[{at}]; return [b.x, (b.y + b.base) / 2]; }}")
    await canvas.click(position={"x": point[0], "y": point[1]})  # scrolled into view
    await expect(page).to_have_url(re.compile(r"/console/reports/team/rows\?.*group=Olga"))
    await expect(page.locator("#rows-total")).to_have_attribute("data-total", "5")
    assert errors == []  # no CSP refusal, no script error


async def test_the_campaigns_dashboard_draws_the_apis_figures(
        reports_console: Console, context: BrowserContext) -> None:
    console = reports_console
    await seed()
    mia = await console.staff("Mia", Role.MARKETER)
    _row, key = await console.core.apikeys.create("dash", [Scope.REPORTS_READ.value],
                                                  actor="test")
    page = await context.new_page()
    errors = _errors(page)
    await sign_in_to(page, console, mia, "/console/campaigns")  # a marketer lands there
    await page.click("a[href='/console/reports']")
    await page.click("a[data-report=campaigns]")
    await expect(page).to_have_url(re.compile("/console/reports/campaigns"))
    await page.goto(f"{console.base}/console/reports/campaigns?{MARCH}")
    await page.wait_for_selector("html[data-chart=done]", state="attached")
    api = await _api(page, console, key, f"/reports/campaigns?{MARCH}")
    drawn = await page.evaluate(
        "() => Chart.getChart(document.getElementById('chart')).data.datasets"
        ".map(d => d.data)")
    series = api["chart"]["data"]["series"]
    assert drawn == [series[k] for k in ("sent", "replied", "clicked", "opted_out")]
    assert series["sent"] == [3, 1]
    shown = await page.eval_on_selector_all(
        ".figure", "els => els.map(e => [e.dataset.figure, JSON.parse(e.dataset.value)])")
    assert dict(shown) == {k: f["value"] for k, f in api["figures"].items()}
    await expect(page.locator("[data-figure=reply_rate] .value")).to_have_text("50%")
    # A campaign's bar opens its recipients.
    point = await page.evaluate(
        "() => { const b = Chart.getChart(document.getElementById('chart'))"
        ".getDatasetMeta(0).data[0]; return [b.x, (b.y + b.base) / 2]; }")
    await page.locator("#chart").click(position={"x": point[0], "y": point[1]})
    await expect(page).to_have_url(re.compile(r"/console/reports/campaigns/rows\?.*group=Spring"))
    await expect(page.locator("#rows-total")).to_have_attribute("data-total", "6")
    assert errors == []


async def _api(page: Page, console: Console, key: str, path: str) -> Any:
    answer = await page.request.get(f"{console.base}/api/v1{path}",
                                    headers={"Authorization": f"Bearer {key}"})
    assert answer.status == 200
    return await answer.json()


async def test_a_marketer_cannot_open_the_inbox(live: Console,
                                                context: BrowserContext) -> None:
    mia = await live.staff("Mia", Role.MARKETER)
    page = await context.new_page()
    await sign_in_to(page, live, mia, "/console/campaigns")
    await expect(page.locator("header nav a[href='/console/inbox']")).to_have_count(0)
    await expect(page.locator("header nav a[href='/console/reports']")).to_have_count(1)
    response = await page.goto(f"{live.base}/console/inbox")
    assert response is not None and response.status == 403
    await expect(page.locator(".message")).to_have_text(
        "Your role may not open this page or do this.")


async def test_a_lead_cannot_schedule_a_campaign(live: Console,
                                                 context: BrowserContext) -> None:
    cid = await draft(live)
    lena = await live.staff("Lena", Role.LEAD)
    page = await context.new_page()
    await sign_in(page, live, lena)
    await expect(page.locator("header nav a[href='/console/campaigns']")).to_have_count(0)
    token = await page.locator("input[name=csrf]").first.get_attribute("value")
    refused = await page.request.post(f"{live.base}/console/campaigns/{cid}/schedule",
                                      form={"csrf": token or ""})
    assert refused.status == 403
    assert "Your role may not open this page or do this." in await refused.text()
    assert (await Campaign.get(id=cid)).state is CampaignState.DRAFT
    response = await page.goto(f"{live.base}/console/campaigns/{cid}")
    assert response is not None and response.status == 403


async def test_the_import_page_shows_progress_and_the_bad_rows(
        live: Console, context: BrowserContext) -> None:
    ada = await live.staff("Ada", Role.ADMIN)
    rows = [f"I-{n},new,buyer{n}@example.com,,{n}.00,EUR" for n in range(3000)]
    rows[10] = "I-10,lost,buyer10@example.com,,1.00,EUR"
    rows[2500] = "I-2500,new,,,1.00,EUR"
    text = "number,status,email,name,amount,currency\n" + "\n".join(rows) + "\n"
    page = await context.new_page()
    errors = _errors(page)
    await sign_in(page, live, ada)
    await page.goto(f"{live.base}/console/orders")
    await page.click("#import-link")
    await page.set_input_files("input[name=file]", files=[{
        "name": "shop.csv", "mimeType": "text/csv", "buffer": text.encode()}])
    await page.click("#start-import")
    await expect(page).to_have_url(re.compile(r"/console/orders/import/[\w-]+$"))
    await expect(page.locator("#import-bar")).to_be_visible()
    await expect(page.locator("#import-progress")).to_have_attribute("data-done", "yes",
                                                                     timeout=60_000)
    await expect(page.locator("#import-percent")).to_have_text("100%")
    await expect(page.locator("#import-bar")).to_have_attribute("value", "100")
    await expect(page.locator("#import-summary")).to_contain_text(
        "3000 rows: 2998 good (2998 new, 0 updated, 0 unchanged), 2 bad.")
    bad = page.locator("#bad-rows tbody tr")
    await expect(bad).to_have_count(2)
    await expect(bad.nth(0)).to_contain_text("12")  # the header is line 1
    await expect(bad.nth(0)).to_contain_text("unknown status 'lost'")
    await expect(bad.nth(1)).to_contain_text("2502")
    await expect(bad.nth(1)).to_contain_text("a new order needs its customer")
    assert await Order.all().count() == 2998
    assert errors == []
