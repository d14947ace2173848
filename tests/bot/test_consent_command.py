"""`/consent` in a customer's topic, through the Bot API double: a manager reads and records
what the customer agreed to (on their word: a call, a letter), with the channels' rules."""

from __future__ import annotations

from crm.models import AuditLog, Identity, Manager
from crm.types import Channel, ConsentKind
from tests.bot.test_managers_chat import customer_topic, topic_text
from tests.support.telegram_double import GROUP, TelegramDouble, user
from tests.support.telegram_fixtures import ServiceFactory, add_manager


async def test_a_manager_reads_and_records_consent_in_the_topic(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    bob_m, bob = await add_manager(9101, "Bob")
    olga_m, olga = await add_manager(9102, "Olga")
    await Manager.filter(id=olga_m.id).update(language="ru")
    ann = user(1101, "Ann")
    async with service() as app:
        assert app.core is not None
        consent = app.core.consent
        thread = await customer_topic(tg, ann, "I phoned you: no more offers by SMS, please")
        cid = (await Identity.get(channel=Channel.TELEGRAM, address="1101")).customer_id
        await app.core.customers.link_identity(cid, Channel.SMS, "+12025550131")
        to_ann = len(tg.sent_to(1101))

        tg.manager_says(GROUP, bob, "/consent", thread)
        await tg.wait_for(lambda: "What the customer agreed to:" in topic_text(tg, thread))
        assert "marketing: telegram yes (default), sms yes (default)" in topic_text(tg, thread)

        tg.manager_says(GROUP, bob, "/consent marketing off sms", thread)
        await tg.wait_for(lambda: "Recorded" in topic_text(tg, thread))
        # Marketing by SMS is every message by SMS: order updates stop there too.
        assert not await consent.allows(cid, ConsentKind.MARKETING, Channel.SMS)
        assert not await consent.allows(cid, ConsentKind.NOTIFICATIONS, Channel.SMS)
        assert await consent.allows(cid, ConsentKind.MARKETING, Channel.TELEGRAM)
        assert "marketing: telegram yes (default), sms no (manager, " in topic_text(tg, thread)

        tg.manager_says(GROUP, bob, "/consent updates on sms", thread)
        await tg.wait_for(lambda: topic_text(tg, thread).count("Recorded") == 2)
        assert await consent.allows(cid, ConsentKind.NOTIFICATIONS, Channel.SMS)
        assert not await consent.allows(cid, ConsentKind.MARKETING, Channel.SMS)

        tg.manager_says(GROUP, bob, "/consent updates on sms", thread)
        await tg.wait_for(lambda: "nothing changed" in topic_text(tg, thread))
        tg.manager_says(GROUP, bob, "/consent marketing maybe", thread)
        await tg.wait_for(lambda: "Usage: /consent" in topic_text(tg, thread))
        tg.manager_says(GROUP, bob, "/consent marketing off fax", thread)
        await tg.wait_for(lambda: "No channel fax" in topic_text(tg, thread))

        tg.manager_says(GROUP, olga, "/consent рассылки выкл", thread)  # every channel
        await tg.wait_for(lambda: "Записано" in topic_text(tg, thread))
        assert "рассылки: telegram — нет (менеджер, " in topic_text(tg, thread)
        assert not await consent.allows(cid, ConsentKind.MARKETING, Channel.EMAIL)

        # The customer is told nothing: the word was theirs, given to a manager.
        assert len(tg.sent_to(1101)) == to_ann
    audit = await AuditLog.filter(customer_id=cid, action="consent.changed").order_by("id")
    assert [(a.actor, a.detail["kind"], a.detail["channel"], a.detail["granted"],
             a.detail["source"]) for a in audit] == [
        (f"manager:{bob_m.id}", "marketing", "sms", False, "manager"),
        (f"manager:{bob_m.id}", "notifications", "sms", False, "manager"),
        (f"manager:{bob_m.id}", "notifications", "sms", True, "manager"),
        (f"manager:{olga_m.id}", "marketing", "*", False, "manager")]


async def test_consent_is_a_command_for_a_customer_s_topic(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9103, "Bob")
    async with service():
        tg.manager_says(GROUP, bob, "/consent marketing off")  # the General topic
        await tg.wait_for(lambda: "customer's topic" in topic_text(tg))
    assert not await AuditLog.filter(action="consent.changed").exists()
