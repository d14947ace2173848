"""The Team page (admins): managers and API keys; the vendored files; the console in Russian."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

from crm.models import ApiKey, AuditLog, Conversation, Manager
from crm.types import Availability, Role
from tests.web.console.conftest import PASSWORD, Console

ROOT = Path(__file__).resolve().parents[3]


async def test_admin_adds_a_manager_who_can_then_sign_in(console: Console) -> None:
    admin = await console.staff("Olga", Role.ADMIN)
    browser = await console.signed_in(admin)
    added = await browser.post("/console/team/managers", {
        "name": "Pavel", "email": "pavel@example.com", "password": PASSWORD, "role": "manager",
        "capacity": "7", "telegram_user_id": ""})
    assert added.status == 303
    pavel = await Manager.get(email="pavel@example.com")
    assert (pavel.role, pavel.capacity, pavel.telegram_user_id) == (Role.MANAGER, 7, None)
    assert await AuditLog.filter(action="manager.added", actor=f"manager:{admin.id}").exists()
    assert (await console.signed_in(pavel)) is not None
    weak = await browser.post("/console/team/managers", {"name": "Zoe",
                                                         "email": "zoe@example.com",
                                                         "password": "short", "role": "manager"})
    assert weak.status == 422 and "too short" in weak.text
    nothing = await browser.post("/console/team/managers", {"name": "Nobody", "role": "manager"})
    assert nothing.status == 422 and "Telegram user id, an email" in nothing.text


async def test_admin_changes_role_capacity_and_availability(console: Console) -> None:
    admin = await console.staff("Olga", Role.ADMIN)
    ivan = await console.staff("Ivan")
    cid = await console.customer("+12025550401", "anyone there?")
    assert (await Conversation.get(customer_id=cid)).assignee_id is None  # nobody online
    browser = await console.signed_in(admin)
    done = await browser.post(f"/console/team/managers/{ivan.id}", {
        "role": "marketer", "capacity": "3", "availability": "online"})
    assert done.status == 303
    await ivan.refresh_from_db()
    assert (ivan.role, ivan.capacity, ivan.availability) == (Role.MARKETER, 3, Availability.ONLINE)
    # Coming online went through routing, as /online does: the waiting conversation is his.
    assert (await Conversation.get(customer_id=cid)).assignee_id == ivan.id
    last = await browser.post(f"/console/team/managers/{admin.id}", {"role": "manager"})
    assert last.status == 422 and "at least one admin" in last.text


async def test_api_key_is_shown_once_and_can_be_revoked(console: Console) -> None:
    admin = await console.staff("Olga", Role.ADMIN)
    browser = await console.signed_in(admin)
    made = await browser.post("/console/team/keys", {"name": "shop",
                                                     "scope": ["orders:write", "customers:read"]})
    assert made.status == 201 and "shown only this once" in made.text
    key = re.search(r'<code class="key">(crm_[A-Za-z0-9_-]+)</code>', made.text)
    assert key is not None
    assert made.headers["Cache-Control"].startswith("no-store")
    row = await ApiKey.get(name="shop")
    assert row.scopes == ["customers:read", "orders:write"] and key.group(1) not in row.key_hash
    again = await browser.get("/console/team")
    assert key.group(1) not in again.text and row.prefix in again.text
    async with browser.http.get(f"{console.base}/api/v1/customers",
                                headers={"Authorization": f"Bearer {key.group(1)}"}) as r:
        assert r.status == 200
    assert (await browser.post("/console/team/keys/shop/revoke")).status == 303
    console.core.apikeys._known.clear()
    async with browser.http.get(f"{console.base}/api/v1/customers",
                                headers={"Authorization": f"Bearer {key.group(1)}"}) as r:
        assert r.status == 401
    no_scope = await browser.post("/console/team/keys", {"name": "empty"})
    assert no_scope.status == 422 and "at least one scope" in no_scope.text


async def test_the_console_speaks_russian(console: Console) -> None:
    anna = await console.staff("Anna")
    anna.language = "ru"
    await anna.save()
    browser = await console.signed_in(anna)
    page = await browser.get("/console/inbox")
    assert "Входящие" in page.text and "Ждут нас" in page.text and 'lang="ru"' in page.text
    stranger = console.browser()
    sign_in = await stranger.get("/console/sign-in")
    assert "Sign in" in sign_in.text
    async with stranger.http.get(f"{console.base}/console/sign-in",
                                 headers={"Accept-Language": "ru-RU,ru;q=0.9"}) as r:
        assert "Войти" in await r.text()


def test_both_team_catalogues_have_the_same_texts() -> None:
    en = tomllib.loads((ROOT / "crm/locales/team.en.toml").read_text())
    ru = tomllib.loads((ROOT / "crm/locales/team.ru.toml").read_text())
    assert sorted(set(en) ^ set(ru)) == []


def test_every_console_text_the_templates_use_exists() -> None:
    en = tomllib.loads((ROOT / "crm/locales/team.en.toml").read_text())
    used: set[str] = set()
    for path in [*(ROOT / "web/templates/console").glob("*.html"),
                 *(ROOT / "web/console").glob("*.py")]:
        used |= set(re.findall(r"""_\(["']([a-z_]+)["']""", path.read_text()))
    prefixes = {"list_", "status_", "delivery_", "who_", "period_", "seg_op_", "seg_kind_",
                "camp_", "camp_state_", "camp_done_", "camp_reach_", "camp_fig_",
                "camp_metric_", "camp_encoding_"}
    missing = [k for k in used if k not in prefixes and f"console_{k}" not in en]
    assert missing == []


def test_every_text_the_campaign_pages_name_by_its_kind_exists() -> None:
    """Texts picked by a value (a kind of condition, a state, a figure): one per value."""
    from crm.types import CampaignState
    from web.console.campaign_form import METRICS
    from web.console.campaign_results import COLUMNS
    from web.console.campaigns import BUTTONS, DONE
    from web.console.segment_form import KINDS, OPS

    keys = [f"seg_kind_{k}" for k in KINDS] + [f"seg_op_{o}" for o in OPS]
    keys += [f"camp_state_{s.value}" for s in CampaignState] + [f"camp_done_{d}" for d in DONE]
    keys += [f"camp_reach_{r}" for r in ("telegram", "email", "sms", "no_consent",
                                         "unreachable")]
    keys += [f"camp_fig_{c}" for c in COLUMNS] + [f"camp_metric_{m}" for m in METRICS]
    keys += [f"camp_encoding_{e}" for e in ("gsm7", "ucs2")]
    keys += [f"camp_{b}" for b in {b for bs in BUTTONS.values() for b in bs} - {"schedule"}]
    for lang in ("en", "ru"):
        catalogue = tomllib.loads((ROOT / f"crm/locales/team.{lang}.toml").read_text())
        assert [k for k in keys if f"console_{k}" not in catalogue] == [], lang


def test_vendored_htmx_files_are_the_published_ones() -> None:
    readme = (ROOT / "web/static/console/README.md").read_text()
    for name, digest in re.findall(r"\| (\S+\.js) \| ([0-9a-f]{64}) \|", readme):
        data = (ROOT / "web/static/console" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
    assert "htmx.org` **2.0.11**" in readme
