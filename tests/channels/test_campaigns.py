"""A campaign on email (aiosmtpd, with Dovecot for the mailbox) and SMS (a real Kannel, the test
playing the network), end to end: each customer gets it on the first channel of the preference
where they can be reached and agreed; the mail says how to stop in its body and in its
List-Unsubscribe headers (https and mailto, One-Click); the SMS says STOP; the mail's
one-click link, POSTed as a mail client does, stops email marketing and nothing else."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp

from crm.app import App
from crm.models import Campaign, Customer, Identity
from crm.types import CampaignState, Channel, ConsentKind, ConsentSource
from tests.channels.email.conftest import email_settings
from tests.channels.sms.conftest import kannel_settings
from tests.support.consent import takes_marketing
from tests.support.dovecot import Dovecot
from tests.support.kannel import FakeSmsc, KannelServer
from tests.support.smtp import SmtpServer


async def _customer(name: str, **addresses: str) -> int:
    customer = await Customer.create(name=name, tags=["club"])
    for channel, address in addresses.items():
        await Identity.create(customer_id=customer.id, channel=Channel(channel),
                              address=address)
    return customer.id


async def test_email_and_sms_by_preference_with_one_click_unsubscribe(
        db: str, tmp_path: Path, kannel: KannelServer, smsc: FakeSmsc, dovecot: Dovecot,
        smtp: SmtpServer) -> None:
    base = kannel_settings(db, kannel)
    mail = email_settings(db, dovecot, smtp, dovecot.add_user(), tmp_path)
    settings = base.model_copy(update={
        "email": mail.email,
        "campaigns": base.campaigns.model_copy(update={"tick_seconds": 0.2,
                                                       "quiet_hours": ""})})
    async with App(settings, manage_database=False) as app:
        core = app.core
        assert core is not None
        ann = await _customer("Ann Lee", email="ann@customer.org", sms="+12025550181")
        await _customer("Bob", sms="+12025550182")
        cat = await _customer("Cat", email="cat@customer.org", sms="+12025550183")
        await _customer("Dan")  # no address at all
        await core.consent.change(cat, ConsentKind.MARKETING, False, channel=Channel.EMAIL,
                                  source=ConsentSource.LINK, actor="customer")
        await core.segments.create("club", {"tag": "club"})
        campaign = await core.campaigns.create({
            "name": "Spring", "segment": "club", "channels": ["email", "sms"],
            "email": {"subject": "Spring sale, {{ customer.first_name }}",
                      "text": "Hi {{ customer.first_name }}, -20% today.",
                      "html": "<p>Hi <b>{{ customer.first_name }}</b>, -20% today.</p>"},
            "sms": {"text": "Hi {{ customer.first_name }}, -20% today."}}, actor="test")
        await core.campaigns.schedule(campaign.id, actor="test")

        [got] = await smtp.wait_for("ann@customer.org")
        message = got.mail
        assert message["Subject"] == "Spring sale, Ann"
        header = message["List-Unsubscribe"]
        url = re.search(r"<(http://[^>]+/u/[^>]+)>", header)
        assert url is not None and "<mailto:" in header and "?subject=unsubscribe>" in header
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Precedence"] == "bulk"
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert url.group(1) in text and url.group(1) in html and "<b>Ann</b>" in html
        for number in ("+12025550182", "+12025550183"):  # Bob has only SMS; Cat said no
            [sms] = await smsc.wait(number)
            assert sms.text.endswith("Reply STOP to opt out.")
            assert sms.text.startswith("Hi ")
        assert not smtp.to("cat@customer.org")
        for _ in range(200):
            if (await Campaign.get(id=campaign.id)).state is CampaignState.FINISHED:
                break
            await asyncio.sleep(0.05)
        stats = await core.campaigns.stats(campaign.id)
        assert stats.by_channel["email"].sent == 1 and stats.by_channel["sms"].sent == 2
        assert stats.total.skipped == {"unreachable": 1}

        # A mail client's one-click unsubscribe (RFC 8058): a POST, no cookie, this body.
        async with aiohttp.ClientSession() as http:
            async with http.get(url.group(1)) as page:  # a scanner's GET changes nothing
                assert page.status == 200
            assert await takes_marketing(ann, Channel.EMAIL)
            async with http.post(url.group(1), data="List-Unsubscribe=One-Click", headers={
                    "Content-Type": "application/x-www-form-urlencoded"}) as done:
                assert done.status == 200
        assert not await takes_marketing(ann, Channel.EMAIL)
        assert await takes_marketing(ann, Channel.SMS)
        assert (await core.campaigns.stats(campaign.id)).total.opted_out == 1
