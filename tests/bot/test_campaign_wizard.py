"""The marketers' wizard in a private chat with the bot, through the Bot API double: /campaign
walks through segment, channels, text, preview, a test send to the marketer, and the schedule;
the campaign then goes; /campaigns lists it with its results. Other managers are refused."""

from __future__ import annotations

import asyncio

from crm.models import Campaign, Manager
from crm.types import CampaignState, Channel, Role
from tests.crm.campaigns.conftest import many
from tests.support.telegram_double import TelegramDouble, user
from tests.support.telegram_fixtures import ServiceFactory

MIA = 4100
QUICK = {"campaigns": {"tick_seconds": 0.2, "quiet_hours": ""}}


async def _said(tg: TelegramDouble, chat: int, count: int) -> str:
    """The text of the bot's `count`-th message to `chat`."""
    return (await tg.wait_sent(chat, count))[count - 1].text


async def test_a_marketer_makes_tests_and_schedules_a_campaign_in_the_chat(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    async with service(managers_chat_id=None, sections=QUICK) as app:
        core = app.core
        assert core is not None
        await Manager.create(telegram_user_id=MIA, name="Mia", role=Role.MARKETER)
        await many(3, Channel.TELEGRAM, 7000, name="Fan")
        await core.segments.create("club", {"tag": "club"})
        mia = user(MIA, "Mia")

        tg.manager_says(MIA, mia, "/campaign")
        assert "1. club (3)" in await _said(tg, MIA, 1)
        tg.manager_says(MIA, mia, "1")
        assert "Which channels" in await _said(tg, MIA, 2)
        tg.manager_says(MIA, mia, "fax")
        assert "telegram, email, sms" in await _said(tg, MIA, 3)
        tg.manager_says(MIA, mia, "telegram sms")
        assert "Now the text" in await _said(tg, MIA, 4)
        tg.manager_says(MIA, mia, "Hello {{ customer.nickname }}")
        assert "nickname" in await _said(tg, MIA, 5)  # refused, and says why
        tg.manager_says(MIA, mia, "<b>Spring sale</b> for {{ customer.first_name }}!")
        preview = await _said(tg, MIA, 6)
        assert "3 customers match now" in preview and "telegram 3" in preview
        assert "Spring sale for Fan-7000-0!" in preview and "1 SMS (gsm7)" in preview
        tg.manager_says(MIA, mia, "test")
        await tg.wait_sent(MIA, 9)  # the confirmation, and the test itself (Telegram, SMS)
        texts = [s.text for s in tg.sent_to(MIA)]
        assert any(t.startswith("<b>Spring sale</b> for Mia!") for t in texts)
        assert any("sms" in t and "Reply STOP to opt out." in t for t in texts)
        assert not [s for s in tg.sent if 7000 <= s.chat_id < 7003]  # nobody else yet
        tg.manager_says(MIA, mia, "now")
        assert "is scheduled" in await _said(tg, MIA, 10)
        for chat in (7000, 7001, 7002):
            [got] = await tg.wait_sent(chat)
            assert got.text.startswith("<b>Spring sale</b> for Fan-")
        campaign = await Campaign.get(state__in=[CampaignState.SENDING, CampaignState.FINISHED])
        for _ in range(100):
            if (await Campaign.get(id=campaign.id)).state is CampaignState.FINISHED:
                break
            await asyncio.sleep(0.05)
        # The marketer is told it finished, and /campaigns shows its results.
        await tg.wait_for(lambda: any("is finished" in s.text for s in tg.sent_to(MIA)))
        tg.manager_says(MIA, mia, "/campaigns")
        listing = await tg.wait_for(lambda: [s.text for s in tg.sent_to(MIA)
                                             if "· finished ·" in s.text])
        assert f"#{campaign.id} Spring sale for" in listing[0]
        assert "· finished · sent 3/3, failed 0" in listing[0]


async def test_only_marketers_and_admins_may_start_the_wizard(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    async with service(managers_chat_id=None, sections=QUICK):
        await Manager.create(telegram_user_id=4200, name="Bob", role=Role.MANAGER)
        tg.manager_says(4200, user(4200, "Bob"), "/campaign")
        assert "Only marketers and admins" in await _said(tg, 4200, 1)
        tg.manager_says(4200, user(4200, "Bob"), "1")
        assert "Reply to a customer's message" in await _said(tg, 4200, 2)
        assert not await Campaign.exists()
