"""SMS through a real Kannel (bearerbox + smsbox), the test playing the mobile network."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from channels.sms.kannel import KannelSender
from channels.sms.session import HttpSession
from crm.app import App
from crm.errors import SendRejected
from crm.i18n import t
from crm.models import Customer, Identity, Message, Outbox
from crm.types import Channel, DeliveryStatus, InboundMessage, OutboundMessage, Outcome
from tests.channels.sms.conftest import OUR_NUMBER, TOKEN, Events, kannel_settings
from tests.support.consent import takes_marketing
from tests.support.kannel import FakeSmsc, KannelServer

Phone = Callable[[], str]
AppEvents = tuple[App, Events]


async def test_inbound_sms_reaches_the_timeline(kannel_app: AppEvents, smsc: FakeSmsc,
                                                phone: Phone) -> None:
    _, events = kannel_app
    number = phone()
    await smsc.deliver(number, OUR_NUMBER, "Hello, is my order on its way?")
    message = await events.inbound_from(number, "Hello, is my order on its way?")
    event = await events.received(message_id=message.id)
    # A new customer with an open conversation: what the managers' chat mirrors and routes.
    assert event.new_customer and event.new_conversation and event.command is None
    assert message.channel is Channel.SMS and message.conversation_id is not None
    assert message.external_id and message.external_id.startswith("kannel-i-")
    identity = await Identity.get(id=message.identity_id)
    assert identity.address == number  # E.164


async def test_a_telegram_customer_who_shared_the_number_is_the_same_customer(
        kannel_app: AppEvents, smsc: FakeSmsc, phone: Phone) -> None:
    app, events = kannel_app
    assert app.core is not None
    number = phone()
    telegram = await app.core.timeline.ingest(
        InboundMessage(Channel.TELEGRAM, "777:1", "777", text="hi from Telegram"))
    # The customer shares their phone in Telegram, written the local way.
    local = f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    await app.core.customers.link_identity(telegram.customer_id, Channel.SMS, local)
    await smsc.deliver(number, OUR_NUMBER, "and now by SMS")
    message = await events.inbound_from(number, "and now by SMS")
    assert message.customer_id == telegram.customer_id


async def test_senders_libphonenumber_does_not_know_are_kept(
        kannel_app: AppEvents, smsc: FakeSmsc, post_smsc: FakeSmsc) -> None:
    """Answered 400 and lost at the gateway before: a number of a range newer than
    libphonenumber's metadata, an alphanumeric sender id, a short code."""
    _, events = kannel_app
    await smsc.deliver("+15557654321", OUR_NUMBER, "New number, same order?")
    new_range = await events.inbound_from("+15557654321", "New number, same order?")
    await smsc.deliver("ACME-Bank", OUR_NUMBER, "Payment received")
    bank = await events.inbound_from("ACME-Bank", "Payment received")
    await post_smsc.deliver("72345", OUR_NUMBER, "Posted by a short code")
    short = await events.inbound_from("72345", "Posted by a short code")
    assert len({new_range.customer_id, bank.customer_id, short.customer_id}) == 3
    assert new_range.conversation_id is not None and bank.conversation_id is not None
    assert await Identity.filter(channel=Channel.SMS).order_by("id").values_list(
        "address", flat=True) == ["+15557654321", "ACME-Bank", "72345"]


async def test_cyrillic_inbound_arrives_as_utf8(kannel_app: AppEvents, smsc: FakeSmsc,
                                               phone: Phone) -> None:
    _, events = kannel_app
    number = phone()
    await smsc.deliver(number, OUR_NUMBER, "Здравствуйте, где мой заказ?")
    message = await events.inbound_from(number, "Здравствуйте, где мой заказ?")
    assert message.delivery_status is DeliveryStatus.RECEIVED


async def test_reply_reaches_the_network_and_the_dlr_marks_it_delivered(
        kannel_app: AppEvents, smsc: FakeSmsc, phone: Phone) -> None:
    app, events = kannel_app
    assert app.core is not None
    number = phone()
    await smsc.deliver(number, OUR_NUMBER, "Hi")
    inbound = await events.inbound_from(number, "Hi")

    reply = await app.core.conversations.send(inbound.customer_id,
                                              "Thanks! It ships today {ref: A-1}")
    [sms] = await smsc.wait(number)
    assert (sms.sender, sms.kind, sms.text) == (OUR_NUMBER, "text",
                                                "Thanks! It ships today {ref: A-1}")
    await events.delivery(reply.id, DeliveryStatus.DELIVERED)
    stored = await Message.get(id=reply.id)
    assert stored.delivery_status is DeliveryStatus.DELIVERED
    assert stored.meta["segments"] == 1 and stored.meta["encoding"] == "gsm7"


async def test_cyrillic_goes_as_ucs2_with_the_right_segment_count(
        kannel_app: AppEvents, smsc: FakeSmsc, phone: Phone) -> None:
    app, events = kannel_app
    assert app.core is not None
    number = phone()
    await smsc.deliver(number, OUR_NUMBER, "Hi")
    customer_id = (await events.inbound_from(number, "Hi")).customer_id

    short = "Ваш заказ отправлен сегодня."
    long = "Ваш заказ №1024 отправлен сегодня курьерской службой; " * 2  # 112 chars: 2 parts
    first = await app.core.conversations.send(customer_id, short)
    second = await app.core.conversations.send(customer_id, long)
    one, two = await smsc.wait(number, count=2)
    assert (one.kind, one.text, one.parts) == ("ucs-2", short, 1)
    assert (two.parts, two.decode(ucs2=True)) == (2, long)
    await events.delivery(second.id, DeliveryStatus.DELIVERED)
    assert (await Message.get(id=first.id)).meta == {"segments": 1, "encoding": "ucs2"}
    assert (await Message.get(id=second.id)).meta == {"segments": 2, "encoding": "ucs2"}


async def test_stop_start_and_help(kannel_app: AppEvents, smsc: FakeSmsc,
                                   phone: Phone) -> None:
    _, events = kannel_app
    number = phone()
    await smsc.deliver(number, OUR_NUMBER, "Stop")
    stop = await events.inbound_from(number, "Stop")
    [confirmation] = await smsc.wait(number)
    assert confirmation.text == t("opted_out_sms", "en", company="Acme")
    customer = await Customer.get(id=stop.customer_id)
    assert not await takes_marketing(customer.id, Channel.SMS)
    # Recorded, not routed: no conversation is opened for a keyword.
    assert stop.meta["command"] == "stop" and stop.conversation_id is None
    assert (await events.received(message_id=stop.id)).command == "stop"

    await smsc.deliver(number, OUR_NUMBER, "СТАРТ")
    await events.inbound_from(number, "СТАРТ")
    _, back = await smsc.wait(number, count=2)
    assert back.kind == "ucs-2" or back.parts > 1
    assert back.decode(ucs2=True) == t("opted_in_sms", "ru", company="Acme")
    assert await takes_marketing(stop.customer_id, Channel.SMS)

    await smsc.deliver(number, OUR_NUMBER, "HELP")
    await events.inbound_from(number, "HELP")
    *_, help_sms = await smsc.wait(number, count=3)
    # The answer and the menu as numbered lines, within [sms] max_segments.
    assert help_sms.decode(ucs2=False) == t("help_sms", "en", company="Acme") + (
        "\n1 - Talk to a manager\n2 - My orders\n3 - Language\nReply with a number.")
    answers = await Message.filter(customer_id=stop.customer_id, author_kind="bot").count()
    assert answers == 3


async def test_forged_or_tokenless_requests_are_refused_and_store_nothing(
        kannel_app: AppEvents, kannel: KannelServer, phone: Phone) -> None:
    base = f"http://127.0.0.1:{kannel.crm_port}"
    number = phone()
    sms = {"from": number, "to": OUR_NUMBER, "text": "forged", "id": "forged-1"}
    async with aiohttp.ClientSession() as http:
        for params in (sms, {**sms, "token": "wrong-token-0123456789"}):
            async with http.get(f"{base}/sms/kannel/inbound", params=params) as response:
                assert response.status == 403
            async with http.get(f"{base}/sms/kannel/dlr", params={
                    **params, "status": "1", "id": "kannel-1-x"}) as response:
                assert response.status == 403
        # The real token works, and a gateway's retry of the same message is stored once.
        for _ in range(2):
            async with http.get(f"{base}/sms/kannel/inbound",
                                params={**sms, "token": TOKEN}) as response:
                assert response.status == 200
        # Only a message without any sender is refused (a sender id is kept: test below).
        async with http.get(f"{base}/sms/kannel/inbound", params={
                **sms, "token": TOKEN, "from": " ", "id": "forged-2"}) as response:
            assert response.status == 400
            assert "no sender" in await response.text()
    assert await Message.filter(text="forged").count() == 1


async def test_too_long_is_refused_before_queuing(kannel_app: AppEvents, smsc: FakeSmsc,
                                                  phone: Phone) -> None:
    app, events = kannel_app
    assert app.core is not None
    number = phone()
    await smsc.deliver(number, OUR_NUMBER, "Hi")
    customer_id = (await events.inbound_from(number, "Hi")).customer_id
    with pytest.raises(SendRejected, match=r"5 segments and the limit is 4"):
        await app.core.conversations.send(customer_id, "Ж" * 300)
    assert await Outbox.filter(customer_id=customer_id).count() == 0
    assert await Message.filter(customer_id=customer_id).count() == 1  # only the inbound


async def test_wrong_kannel_password_is_a_permanent_config_error(
        db: str, kannel: KannelServer) -> None:
    settings = kannel_settings(db, kannel, password="wrong")
    http = HttpSession()
    sender = KannelSender(settings.sms, settings.http.public_url, http)
    try:
        result = await sender.send(OutboundMessage(Channel.SMS, "+12025550199", "hi",
                                                   outbox_id=1))
    finally:
        await http.close()
    assert result.outcome is Outcome.PERMANENT
    assert result.error is not None and "[sms.kannel]" in result.error
    assert sender.problem == result.error  # /healthz shows the channel down with this reason


async def test_post_url_inbound_through_kannel(kannel_app: AppEvents, post_smsc: FakeSmsc,
                                               phone: Phone) -> None:
    """Kannel's post-url: the text is the body; sender, receiver and time are X-Kannel-From,
    X-Kannel-To and X-Kannel-Time (the URL has only the token and id=%I)."""
    _, events = kannel_app
    number = phone()
    await post_smsc.deliver(number, OUR_NUMBER, "Привет! Posted, not fetched")
    message = await events.inbound_from(number, "Привет! Posted, not fetched")
    assert message.external_id and message.external_id.startswith("kannel-i-")
    assert message.meta["headers"] == {"to": OUR_NUMBER}
    assert await Message.filter(external_id=message.external_id).count() == 1


def kannel_post_headers(number: str, charset: str = "UTF-8") -> dict[str, str]:
    """The headers of Kannel 1.4.5's post-url request (smsbox.c, TRANSTYPE_POST_URL), with
    send-sender = true; UTF-16BE is how it labels UCS-2 text when mo-recode is off."""
    return {"User-Agent": "Kannel/1.4.5", "Content-Type": f'text/plain; charset="{charset}"',
            "X-Kannel-From": number, "X-Kannel-To": OUR_NUMBER,
            "X-Kannel-Time": "2026-11-23 14:03:24", "X-Kannel-SMSC": "fake",
            "X-Kannel-Coding": "2" if charset == "UTF-16BE" else "0"}


async def test_post_url_retry_is_stored_once_and_tokenless_posts_are_refused(
        kannel_app: AppEvents, kannel: KannelServer, phone: Phone) -> None:
    inbound = f"http://127.0.0.1:{kannel.crm_port}/sms/kannel/inbound"
    number, other = phone(), phone()
    text = "Where is my parcel? Где посылка?"
    async with aiohttp.ClientSession() as http:
        for params in ({"id": "post-forged"}, {"id": "post-forged", "token": "wrong-" * 4}):
            async with http.post(inbound, params=params, data=b"forged by post",
                                 headers=kannel_post_headers(number)) as response:
                assert response.status == 403
        # Kannel sends again what did not get an answer: the same message id, stored once.
        for _ in range(2):
            async with http.post(inbound, params={"token": TOKEN, "id": f"post-{number}"},
                                 data=text.encode(), headers=kannel_post_headers(number)
                                 ) as response:
                assert response.status == 200
        # UCS-2 left as UTF-16BE (mo-recode off) reads the same.
        async with http.post(inbound, params={"token": TOKEN, "id": f"post-{other}"},
                             data=text.encode("utf-16-be"),
                             headers=kannel_post_headers(other, "UTF-16BE")) as response:
            assert response.status == 200
    assert await Message.filter(text="forged by post").count() == 0
    stored = await Message.filter(text=text).order_by("id")
    assert [(await Identity.get(id=m.identity_id)).address for m in stored] == [number, other]
