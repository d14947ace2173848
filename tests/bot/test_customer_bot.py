"""The customer bot end to end: the real service, python-telegram-bot, the Bot API double."""

from __future__ import annotations

from crm.models import AuditLog, Customer, Identity, Message
from crm.types import Channel, Direction
from tests.support.consent import takes_marketing
from tests.support.telegram_double import GROUP, TelegramDouble, user
from tests.support.telegram_fixtures import ServiceFactory


async def test_start_with_deep_link_greets_in_russian_with_the_menu(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    ivan = user(501, "Иван", language_code="ru")
    async with service():
        tg.customer_says(ivan, "/start spring_ad")
        [greeting] = await tg.wait_sent(501)
        assert greeting.text.startswith("Здравствуйте, Иван!")
        buttons = [row[0]["callback_data"] for row in greeting.reply_markup["inline_keyboard"]]
        assert buttons == ["talk", "orders", "phone", "help", "language"]

        tg.press(ivan, "menu:orders")  # a button of an older menu, still in the chat
        orders = (await tg.wait_sent(501, 2))[1]
        assert orders.text == "У вас пока нет заказов."
        tg.press(ivan, "frobnicate")  # a button of nothing we offer
        unknown = (await tg.wait_sent(501, 3))[2]
        assert unknown.text.startswith("Я не знаю такой команды.")
    customer = await Customer.get(id=(await Identity.get(address="501")).customer_id)
    assert customer.lead_source == "spring_ad"
    assert customer.language == "ru"
    # Commands are in the timeline but not the managers' business: nothing mirrored.
    assert tg.sent_to(GROUP) == []


async def test_free_text_is_stored_mirrored_and_acknowledged_once(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    ann = user(601, "Ann <b>&")
    async with service():
        tg.customer_says(ann, "I need <help> & a price")
        [ack] = await tg.wait_sent(601)
        assert ack.text.startswith("Thank you! We have your message")
        tg.customer_says(ann, "second message")
        mirrored = await tg.wait_for(
            lambda: "second message" in " ".join(s.text for s in tg.sent_to(GROUP)))
        assert mirrored
        topic_text = " ".join(s.text for s in tg.sent_to(GROUP))
        assert "I need &lt;help&gt; &amp; a price" in topic_text  # escaped, accepted by the API
        assert "Ann &lt;b&gt;&amp;" in topic_text
        assert {s.thread_id for s in tg.sent_to(GROUP)} == set(tg.forums[GROUP])
        [(_thread, topic)] = tg.forums[GROUP].items()
        assert topic["name"].startswith("Ann <b>& #")
    assert len(tg.sent_to(601)) == 1  # one acknowledgement, not one per message
    texts = await Message.filter(direction=Direction.IN).values_list("text", flat=True)
    assert sorted(texts) == ["I need <help> & a price", "second message"]


async def test_stop_and_start_opt_out_and_in_with_confirmations(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    bob = user(701, "Bob")
    async with service():
        tg.customer_says(bob, "/stop")
        [stopped] = await tg.wait_sent(701)
        assert "no longer receive" in stopped.text
        customer = await Customer.get(id=(await Identity.get(address="701")).customer_id)
        assert not await takes_marketing(customer.id, Channel.TELEGRAM)
        tg.customer_says(bob, "/start")
        sent = await tg.wait_sent(701, 3)
        assert "receive our news and offers again" in sent[1].text
        assert sent[2].text.startswith("Hello, Bob!")
    await customer.refresh_from_db()
    assert await takes_marketing(customer.id, Channel.TELEGRAM)
    actions = await AuditLog.filter(customer_id=customer.id).values_list("action", flat=True)
    assert actions.count("consent.changed") == 2


async def test_shared_phone_merges_with_the_sms_customer(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    async with service() as app:
        assert app.core is not None
        sms = await app.core.timeline.ingest(_sms("+14155550123", "hi by sms"))
        carl = user(801, "Carl")
        tg.customer_says(carl, "hello from telegram")
        await tg.wait_sent(801)
        tg.press(carl, "menu:phone")
        ask = (await tg.wait_sent(801, 2))[1]
        assert ask.reply_markup["keyboard"][0][0]["request_contact"] is True
        tg.customer_says(carl, contact={"phone_number": "+1 415 555 0123", "first_name": "Carl",
                                        "user_id": 801})
        thanks = (await tg.wait_sent(801, 3))[2]
        assert thanks.text == "Thank you, your phone number is saved."
    tg_identity = await Identity.get(channel=Channel.TELEGRAM, address="801")
    sms_identity = await Identity.get(channel=Channel.SMS, address="+14155550123")
    assert tg_identity.customer_id == sms_identity.customer_id == sms.customer_id
    texts = await Message.filter(customer_id=sms.customer_id, direction=Direction.IN).values_list(
        "text", flat=True)
    assert {"hi by sms", "hello from telegram"} <= set(texts)


def _sms(phone: str, text: str):  # type: ignore[no-untyped-def]
    from crm.types import InboundMessage

    return InboundMessage(Channel.SMS, f"sms-{phone}-{text}", phone, text=text)
