"""The `crm` command through a real subprocess, against the test database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crm.apikeys import ApiKeys, hash_key
from crm.models import ApiKey, AuditLog, CannedReply, Customer, CustomerTopic, Identity, Manager
from crm.services import Core
from crm.types import Channel, ConsentKind, ConsentSource, InboundMessage

CRM = str(Path(sys.executable).parent / "crm")


@pytest.fixture
def config(db: str, tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db}"\n')
    return path


def crm(config: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([CRM, *args, "-c", str(config)], capture_output=True, text=True,
                          timeout=60)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_help_explains_every_command() -> None:
    done = subprocess.run([CRM, "--help"], capture_output=True, text=True, check=True)
    for command in ("run", "db", "managers", "customers", "apikeys", "orders", "replies"):
        assert command in done.stdout
    for group, subs in (("customers", ("list", "show", "find", "import", "merge", "export",
                                       "forget")),
                        ("replies", ("add", "list", "remove")),
                        ("orders", ("import",)),
                        ("managers", ("add", "list", "remove")), ("db", ("upgrade",)),
                        ("apikeys", ("create", "list", "revoke"))):
        out = subprocess.run([CRM, group, "--help"], capture_output=True, text=True,
                             check=True).stdout
        assert all(sub in out for sub in subs), out


def test_unknown_command_fails_clearly() -> None:
    done = subprocess.run([CRM, "frobnicate"], capture_output=True, text=True)
    assert done.returncode == 2 and "No such command 'frobnicate'" in done.stderr


async def test_managers_add_list_remove(config: Path) -> None:
    out = crm(config, "managers", "add", "1001", "Olga", "--role", "admin",
              "--username", "@olga").stdout
    assert "added manager" in out and "Olga (admin)" in out
    dup = crm(config, "managers", "add", "1001", "Olga", ok=False)
    assert dup.returncode == 1 and "already a manager" in dup.stderr
    bad = crm(config, "managers", "add", "1002", "Ivan", "--role", "boss", ok=False)
    assert bad.returncode == 2 and "'boss' is not one of" in bad.stderr
    listing = crm(config, "managers", "list").stdout
    assert "1001" in listing and "admin" in listing and "@olga" in listing
    assert "removed manager" in crm(config, "managers", "remove", "1001").stdout
    assert "no managers yet" in crm(config, "managers", "list").stdout
    missing = crm(config, "managers", "remove", "999", ok=False)
    assert missing.returncode == 1 and "no manager with Telegram user id 999" in missing.stderr


async def test_a_manager_s_language_is_set_when_added(config: Path) -> None:
    out = crm(config, "managers", "add", "1003", "Ольга", "--language", "ru").stdout
    assert "added manager" in out
    assert (await Manager.get(telegram_user_id=1003)).language == "ru"
    bad = crm(config, "managers", "add", "1005", "Hans", "--language", "de", ok=False)
    assert bad.returncode == 2 and "'de' is not one of 'en', 'ru'" in bad.stderr
    assert not await Manager.filter(telegram_user_id=1005).exists()


async def test_replies_add_list_remove_per_language(config: Path, core: Core) -> None:
    out = crm(config, "replies", "add", "Hours", "We are open 9-18, {{ customer.first_name }}.")
    assert out.stdout.strip() == "saved reply hours (every language)"
    out = crm(config, "replies", "add", "hours", "Мы работаем с 9 до 18, "
              "{{ customer.first_name }}.", "--language", "ru")
    assert out.stdout.strip() == "saved reply hours (ru)"
    bad = crm(config, "replies", "add", "oops", "Hi {{ customer.nickname }}", "--language",
              "ru", ok=False)
    assert bad.returncode == 1 and "customer.first_name" in bad.stderr
    assert not await CannedReply.filter(key="oops").exists()

    [listed] = crm(config, "replies", "list").stdout.splitlines()
    assert listed.split()[:2] == ["hours", "*,ru"] and "We are open 9-18" in listed
    ivan = await core.timeline.ingest(InboundMessage(
        Channel.TELEGRAM, "1:1", "501", text="hi", sender_name="Иван Петров", language="ru"))
    _, said = await core.replies.render_for("hours", await core.customers.get(
        ivan.customer_id), None)
    assert said.text == "Мы работаем с 9 до 18, Иван."

    assert crm(config, "replies", "remove", "hours", "--language", "ru").stdout.strip() == \
        "removed 1 variant(s) of hours"
    assert [r.language for r in await CannedReply.filter(key="hours")] == [""]
    crm(config, "replies", "remove", "hours")
    assert "no canned replies yet" in crm(config, "replies", "list").stdout
    missing = crm(config, "replies", "remove", "hours", ok=False)
    assert missing.returncode == 1 and "no canned reply hours" in missing.stderr


async def test_customers_find_names_addresses_and_words(db: str, tmp_path: Path,
                                                        core: Core) -> None:
    config = tmp_path / "with-group.toml"
    config.write_text(f'[database]\nurl = "{db}"\n[telegram]\nmanagers_chat_id = -1001234567890\n')
    olga = await core.timeline.ingest(InboundMessage(
        Channel.EMAIL, "<m1@x>", "olga@example.com", text="Где мой ЗАКАЗ номер 42?",
        sender_name="Ольга Смирнова"))
    await core.timeline.ingest(InboundMessage(Channel.SMS, "s-1", "+12025550143",
                                              text="parcel arrived damaged"))
    await CustomerTopic.create(customer_id=olga.customer_id, chat_id=-1001234567890,
                               thread_id=77)
    by_name = crm(config, "customers", "find", "смирн").stdout
    assert by_name.splitlines()[0] == "customers:"
    assert "Ольга Смирнова" in by_name and "olga@example.com" in by_name
    assert "https://t.me/c/1234567890/77" in by_name  # a link to the customer's topic
    assert "+12025550143" not in by_name
    by_word = crm(config, "customers", "find", "заказ").stdout
    assert "messages:" in by_word and "<- email" in by_word and "Где мой ЗАКАЗ номер 42?" in by_word
    assert crm(config, "customers", "find", "nothing-like-it").stdout.strip() == \
        "nothing found for 'nothing-like-it'"


async def test_customers_list_show_export_merge_forget(config: Path, core: Core,
                                                       tmp_path: Path) -> None:
    a = await core.timeline.ingest(InboundMessage(
        Channel.EMAIL, "<m1@x>", "Ann <ann@example.com>", text="Where is <b>my</b> order?",
        sender_name="Ann"))
    b = await core.timeline.ingest(InboundMessage(Channel.SMS, "s1", "+12025550143",
                                                  text="It's Ann again"))
    await core.conversations.send(a.customer_id, "On its way!", channel=Channel.EMAIL)

    listing = crm(config, "customers", "list").stdout
    assert "Ann" in listing and "email:ann@example.com" in listing
    assert "sms:+12025550143" in crm(config, "customers", "list", "-s", "2025550143").stdout

    await core.consent.change(b.customer_id, ConsentKind.MARKETING, False, channel=Channel.SMS,
                              source=ConsentSource.KEYWORD, actor="customer")
    assert "[no marketing: sms]" in crm(config, "customers", "list", "-s", "2025550143").stdout
    show = crm(config, "customers", "show", str(a.customer_id)).stdout
    assert "Customer #" in show and "ann@example.com" in show
    assert "  marketing: email yes (default), other channels yes (default)" in show
    assert "<- email    customer: Where is <b>my</b> order?" in show
    assert "-> email    manager [queued]: On its way!" in show

    out_file = tmp_path / "ann.json"
    crm(config, "customers", "export", str(a.customer_id), "-o", str(out_file))
    exported = json.loads(out_file.read_text())
    assert exported["customer"]["name"] == "Ann"
    assert len(exported["messages"]) == 2

    merged = crm(config, "customers", "merge", str(b.customer_id), str(a.customer_id)).stdout
    assert f"merged #{b.customer_id} into #{a.customer_id}" in merged
    assert await Identity.filter(customer_id=a.customer_id).count() == 2

    refused = crm(config, "customers", "forget", str(a.customer_id), ok=False)
    assert refused.returncode == 1  # no --yes and no terminal to confirm: aborted
    assert (await Customer.get(id=a.customer_id)).name == "Ann"
    done = crm(config, "customers", "forget", str(a.customer_id), "--yes").stdout
    assert "forgot customer" in done
    assert (await Customer.get(id=a.customer_id)).name is None

    missing = crm(config, "customers", "show", "424242", ok=False)
    assert missing.returncode == 1 and "customer #424242 does not exist" in missing.stderr


async def test_apikeys_create_list_revoke(config: Path) -> None:
    done = crm(config, "apikeys", "create", "shop", "--scope", "customers:read",
               "--scope", "messages:send")
    key = done.stdout.strip()
    assert key.startswith("crm_") and len(key) > 40 and "\n" not in key
    assert "shown only this once" in done.stderr and "customers:read" in done.stderr
    row = await ApiKey.get(name="shop")
    assert row.key_hash == hash_key(key) and row.scopes == ["customers:read", "messages:send"]
    assert (await ApiKeys().authenticate(key)) is not None

    listing = crm(config, "apikeys", "list").stdout
    assert "shop" in listing and row.prefix in listing and key not in listing
    assert "customers:read, messages:send" in listing

    dup = crm(config, "apikeys", "create", "shop", "--scope", "customers:read", ok=False)
    assert dup.returncode == 1 and "exists already" in dup.stderr
    bad = crm(config, "apikeys", "create", "x", "--scope", "everything", ok=False)
    assert bad.returncode == 2 and "'everything' is not one of" in bad.stderr
    none = crm(config, "apikeys", "create", "x", ok=False)
    assert none.returncode == 2 and "--scope" in none.stderr

    assert "revoked API key 'shop'" in crm(config, "apikeys", "revoke", "shop").stdout
    assert (await ApiKeys().authenticate(key)) is None
    assert "(revoked" in crm(config, "apikeys", "list").stdout
    again = crm(config, "apikeys", "revoke", "shop", ok=False)
    assert again.returncode == 1 and "already revoked" in again.stderr
    missing = crm(config, "apikeys", "revoke", "nope", ok=False)
    assert missing.returncode == 1 and "no API key named 'nope'" in missing.stderr
    assert await AuditLog.filter(action__startswith="apikey.").count() == 2


async def test_managers_add_by_email_and_set_a_console_password(config: Path) -> None:
    from crm.models import Manager
    from crm.passwords import verify_password

    out = crm(config, "managers", "add", "Dana Web", "--email", "Dana@Example.com",
              "--role", "marketer").stdout
    assert "added manager" in out and "email dana@example.com" in out
    assert "crm managers password dana@example.com" in out
    both = crm(config, "managers", "add", "2002", "Tom", "--email", "tom@example.com").stdout
    assert "Telegram 2002" in both and "tom@example.com" in both
    neither = crm(config, "managers", "add", "Nobody", ok=False)
    assert neither.returncode == 2 and "--email" in neither.stderr
    bad = crm(config, "managers", "add", "Eve", "--email", "not-an-email", ok=False)
    assert bad.returncode == 1 and "is not an email address" in bad.stderr
    # The password is read from a prompt (twice); only an argon2 hash is stored.
    done = subprocess.run([CRM, "managers", "password", "dana@example.com", "-c", str(config)],
                          input="a long enough secret\na long enough secret\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "password set for Dana Web" in done.stdout
    dana = await Manager.get(email="dana@example.com")
    assert dana.telegram_user_id is None and dana.password_hash is not None
    assert dana.password_hash.startswith("$argon2id$")
    assert await verify_password(dana.password_hash, "a long enough secret")
    short = subprocess.run([CRM, "managers", "password", "Tom", "-c", str(config)],
                           input="short\nshort\n", capture_output=True, text=True, timeout=60)
    assert short.returncode == 1 and "too short" in short.stderr
    listed = crm(config, "managers", "list").stdout
    assert "<dana@example.com>" in listed and "Dana Web" in listed
