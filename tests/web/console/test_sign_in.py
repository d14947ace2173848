"""Signing in to the console: password, lockout, sessions (cookie, idle expiry, sign-out), the
first admin's link."""

from __future__ import annotations

from typing import Any

from crm.models import AuditLog, Manager, StaffSession
from crm.types import Role
from tests.support.clock import TravelClock
from tests.web.console.conftest import PASSWORD, Console


async def test_password_sign_in_sets_a_safe_cookie_and_opens_the_inbox(console: Console) -> None:
    ann = await console.staff("Ann")
    browser = console.browser()
    assert (await browser.get("/console/inbox")).headers["Location"] == \
        "/console/sign-in?next=/console/inbox"
    form = await browser.get("/console/sign-in?next=/console/inbox")
    done = await browser.post("/console/sign-in", {"email": "ANN@example.com ",
                                                   "password": PASSWORD,
                                                   "next": "/console/inbox"}, csrf=form.csrf)
    assert done.status == 303 and done.headers["Location"] == "/console/inbox"
    cookie = done.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("crm_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Path=/console" in session
    assert "Secure" not in session  # public_url is http here
    inbox = await browser.get("/console/inbox")
    assert inbox.status == 200 and "Ann" in inbox.text
    # Only a hash of the token is stored.
    token = browser.cookie("crm_session").value
    row = await StaffSession.get(manager_id=ann.id)
    assert token not in row.token_hash and len(row.token_hash) == 64
    assert await AuditLog.filter(action="console.signed_in").count() == 1


async def test_cookie_is_secure_when_the_public_url_is_https(console_with: Any) -> None:
    console = await console_with(http={"public_url": "https://crm.example.com"})
    await console.staff("Ann")
    browser = console.browser()
    form = await browser.get("/console/sign-in")
    assert "Secure" in form.headers["Set-Cookie"]
    # Over plain HTTP here the client keeps the Secure cookie to itself: send it by hand.
    done = await browser.post("/console/sign-in", {"email": "ann@example.com",
                                                   "password": PASSWORD}, csrf=form.csrf,
                              headers={"Cookie": f"crm_pre={form.csrf}"})
    assert any(c.startswith("crm_session=") and "Secure" in c
               for c in done.headers.getall("Set-Cookie"))


async def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
        console: Console) -> None:
    await console.staff("Ann")
    browser = console.browser()
    form = await browser.get("/console/sign-in")
    wrong = await browser.post("/console/sign-in", {"email": "ann@example.com",
                                                    "password": "nope nope nope"},
                               csrf=form.csrf)
    nobody = await browser.post("/console/sign-in", {"email": "bob@example.com",
                                                     "password": PASSWORD}, csrf=form.csrf)
    assert wrong.status == nobody.status == 401
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in nobody.text
    assert browser.cookie("crm_session") is None


async def test_sign_in_without_the_form_token_is_refused(console: Console) -> None:
    await console.staff("Ann")
    browser = console.browser()
    page = await browser.post("/console/sign-in", {"email": "ann@example.com",
                                                   "password": PASSWORD}, csrf=None)
    assert page.status == 403 and browser.cookie("crm_session") is None


async def test_lockout_after_repeated_failures_even_with_the_right_password(
        console_with: Any) -> None:
    clock = TravelClock()
    console = await console_with(clock=clock, console={"sign_in_max_failures": 3,
                                                       "sign_in_lockout_minutes": 10})
    await console.staff("Ann")
    browser = console.browser()
    form = await browser.get("/console/sign-in")
    for _ in range(3):
        page = await browser.post("/console/sign-in", {"email": "ann@example.com",
                                                       "password": "guess guess guess"},
                                  csrf=form.csrf)
        assert page.status == 401
    locked = await browser.post("/console/sign-in", {"email": "ann@example.com",
                                                     "password": PASSWORD}, csrf=form.csrf)
    assert locked.status == 429 and "try again in 10 min" in locked.text
    assert browser.cookie("crm_session") is None
    clock.advance(minutes=11)
    opened = await browser.post("/console/sign-in", {"email": "ann@example.com",
                                                     "password": PASSWORD}, csrf=form.csrf)
    assert opened.status == 303


async def test_sign_out_ends_the_session_on_the_server(console: Console) -> None:
    ann = await console.staff("Ann")
    browser = await console.signed_in(ann)
    token = browser.cookie("crm_session").value
    assert (await browser.get("/console/inbox")).status == 200
    out = await browser.post("/console/sign-out")
    assert out.status == 303 and out.headers["Location"] == "/console/sign-in"
    # The old cookie, replayed, no longer opens anything.
    replay = console.browser()
    replay.http.cookie_jar.update_cookies({"crm_session": token})
    assert (await replay.get("/console/inbox")).status == 303
    assert (await StaffSession.get(manager_id=ann.id)).ended_at is not None


async def test_an_idle_session_expires(console_with: Any) -> None:
    clock = TravelClock()
    console = await console_with(clock=clock, console={"session_idle_minutes": 30})
    ann = await console.staff("Ann")
    browser = await console.signed_in(ann)
    clock.advance(minutes=20)
    assert (await browser.get("/console/inbox")).status == 200  # used: the idle time restarts
    clock.advance(minutes=25)
    assert (await browser.get("/console/inbox")).status == 200
    clock.advance(minutes=31)
    page = await browser.get("/console/inbox")
    assert page.status == 303 and page.headers["Location"].startswith("/console/sign-in")


async def test_the_first_admin_link_creates_an_admin_once(console: Console) -> None:
    link = await console.core.staff.first_admin_link()
    assert link is not None and "/console/first-admin/" in link
    path = link.removeprefix(console.core.settings.http.public_url)
    browser = console.browser()
    form = await browser.get(path)
    assert form.status == 200
    weak = await browser.post(path, {"name": "Olga", "email": "olga@example.com",
                                     "password": "short"}, csrf=form.csrf)
    assert weak.status == 422 and "too short" in weak.text
    done = await browser.post(path, {"name": "Olga", "email": "olga@example.com",
                                     "password": PASSWORD}, csrf=form.csrf)
    assert done.status == 303 and done.headers["Location"] == "/console/team"
    olga = await Manager.get(email="olga@example.com")
    assert olga.role is Role.ADMIN and olga.telegram_user_id is None
    assert (await browser.get("/console/team")).status == 200
    # Once: the same link, and any new one, no longer make an admin.
    again = console.browser()
    assert (await again.get(path)).status == 410
    assert await console.core.staff.first_admin_link() is None
    assert await Manager.filter(role=Role.ADMIN).count() == 1
