"""`crm customers consent` through a real subprocess, against the test database."""

from __future__ import annotations

import subprocess
from pathlib import Path

from crm.models import AuditLog
from crm.services import Core
from crm.types import Channel, ConsentKind, InboundMessage
from tests.crm.test_cli import CRM, config, crm

__all__ = ["config"]  # the fixture


async def test_customers_consent_shows_and_records_with_the_channels_rules(
        config: Path, core: Core) -> None:
    ann = (await core.timeline.ingest(InboundMessage(
        Channel.SMS, "s-1", "+12025550144", text="hi", sender_name="Ann"))).customer_id
    shown = crm(config, "customers", "consent", str(ann)).stdout
    assert f"customer #{ann}:" in shown
    assert "marketing: sms yes (default), other channels yes (default)" in shown

    done = crm(config, "customers", "consent", str(ann), "--marketing", "off",
               "--channel", "sms").stdout
    assert "changed marketing off (sms), notifications off (sms)" in done
    assert "marketing: sms no (cli, " in done
    assert not await core.consent.allows(ann, ConsentKind.NOTIFICATIONS, Channel.SMS)
    assert await core.consent.allows(ann, ConsentKind.MARKETING, Channel.EMAIL)

    again = crm(config, "customers", "consent", str(ann), "--marketing", "off",
                "--channel", "sms").stdout
    assert "nothing changed" in again
    both = crm(config, "customers", "consent", str(ann), "--marketing", "on",
               "--notifications", "off").stdout  # every channel
    assert "changed marketing on (every channel), notifications off (every channel)" in both
    assert await core.consent.allows(ann, ConsentKind.MARKETING, Channel.SMS)
    assert not await core.consent.allows(ann, ConsentKind.NOTIFICATIONS, Channel.EMAIL)

    audit = await AuditLog.filter(customer_id=ann, action="consent.changed").order_by("id")
    assert [(a.actor, a.detail["source"], a.detail["kind"], a.detail["channel"])
            for a in audit] == [("cli", "cli", "marketing", "sms"),
                                ("cli", "cli", "notifications", "sms"),
                                ("cli", "cli", "marketing", "*"),
                                ("cli", "cli", "notifications", "*")]


async def test_customers_consent_refuses_what_it_cannot_do(config: Path, core: Core) -> None:
    missing = crm(config, "customers", "consent", "4242", "--marketing", "off", ok=False)
    assert missing.returncode == 1 and "customer #4242 does not exist" in missing.stderr
    bad = crm(config, "customers", "consent", "1", "--marketing", "maybe", ok=False)
    assert bad.returncode == 2 and "'maybe' is not one of 'on', 'off'" in bad.stderr
    alone = crm(config, "customers", "consent", "1", "--channel", "sms", ok=False)
    assert alone.returncode == 2 and "--channel goes with --marketing" in alone.stderr
    assert not await AuditLog.filter(action="consent.changed").exists()
    listed = subprocess.run([CRM, "customers", "--help"], capture_output=True, text=True,
                            check=True).stdout
    assert "consent" in listed
