"""SMS through Twilio's API, played by an HTTP double that checks requests and signs callbacks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest_asyncio

from crm.app import App
from crm.models import Identity, Message
from crm.types import Channel, DeliveryStatus
from tests.channels.sms.conftest import OUR_NUMBER, TOKEN, Events, running, twilio_settings
from tests.support.consent import takes_marketing
from tests.support.twilio_double import TwilioDouble

Phone = Callable[[], str]
AppEvents = tuple[App, Events]


def url(app: App, path: str, token: str = TOKEN) -> str:
    return f"{app.settings.http.public_url}{path}?token={token}"


async def test_inbound_reply_and_status_callbacks(twilio_app: AppEvents, twilio: TwilioDouble,
                                                  phone: Phone) -> None:
    app, events = twilio_app
    assert app.core is not None
    number = phone()
    params = twilio.inbound_params(number, OUR_NUMBER, "Do you ship to Canada?")
    status, body = await twilio.post(url(app, "/sms/twilio/inbound"), params)
    assert status == 200 and "<Response>" in body
    # Twilio does not retry, but a proxy might: the same MessageSid is stored once.
    assert (await twilio.post(url(app, "/sms/twilio/inbound"), params))[0] == 200
    inbound = await events.inbound_from(number, "Do you ship to Canada?")
    assert inbound.external_id == params["MessageSid"]
    assert await Message.filter(external_id=params["MessageSid"]).count() == 1

    reply = await app.core.conversations.send(inbound.customer_id, "Yes, in 5–7 days.")
    [sms] = await twilio.wait_sent(number)
    assert (sms.sender, sms.body) == (OUR_NUMBER, "Yes, in 5–7 days.")
    assert sms.status_callback.startswith(url(app, "/sms/twilio/status"))
    await events.delivery(reply.id, DeliveryStatus.SENT)
    stored = await Message.get(id=reply.id)
    assert stored.external_id == sms.sid
    assert stored.meta == {"segments": 1, "encoding": "ucs2"}  # the en dash is not GSM-7

    assert await twilio.status(sms, "sent") == 200
    assert await twilio.status(sms, "delivered") == 200
    await events.delivery(reply.id, DeliveryStatus.DELIVERED)
    assert (await Message.get(id=reply.id)).delivery_status is DeliveryStatus.DELIVERED


async def test_permanent_failure_marks_the_number(twilio_app: AppEvents, twilio: TwilioDouble,
                                                  phone: Phone) -> None:
    app, events = twilio_app
    assert app.core is not None
    number = phone()
    await twilio.post(url(app, "/sms/twilio/inbound"),
                      twilio.inbound_params(number, OUR_NUMBER, "hello"))
    inbound = await events.inbound_from(number, "hello")
    reply = await app.core.conversations.send(inbound.customer_id, "Hello!")
    [sms] = await twilio.wait_sent(number)
    await events.delivery(reply.id, DeliveryStatus.SENT)
    assert await twilio.status(sms, "undelivered", error_code="30005") == 200
    await events.delivery(reply.id, DeliveryStatus.FAILED)
    stored = await Message.get(id=reply.id)
    assert stored.delivery_error is not None and "30005" in stored.delivery_error
    identity = await Identity.get(id=inbound.identity_id)
    assert identity.undeliverable_reason is not None


async def test_rate_limited_is_retried_and_invalid_number_is_permanent(
        twilio_app: AppEvents, twilio: TwilioDouble, phone: Phone) -> None:
    app, events = twilio_app
    assert app.core is not None
    number, bad = phone(), phone()
    for who in (number, bad):
        await twilio.post(url(app, "/sms/twilio/inbound"),
                          twilio.inbound_params(who, OUR_NUMBER, "hi"))
    first = await events.inbound_from(number, "hi")
    second = await events.inbound_from(bad, "hi")
    twilio.script.append((429, {"code": 20429, "message": "Too Many Requests",
                                "status": 429}))
    twilio.invalid_numbers.add(bad)
    ok = await app.core.conversations.send(first.customer_id, "one")
    failed = await app.core.conversations.send(second.customer_id, "two")
    await events.delivery(ok.id, DeliveryStatus.SENT)
    await events.delivery(failed.id, DeliveryStatus.FAILED)
    assert [s.body for s in twilio.sent] == ["one"]
    assert len(twilio.requests) == 3  # the 429, the retry, the invalid number
    stored = await Message.get(id=failed.id)
    assert stored.delivery_error is not None and "21211" in stored.delivery_error
    assert (await Identity.get(id=second.identity_id)).undeliverable_reason is not None


async def test_bad_signature_or_token_is_refused_and_stores_nothing(
        twilio_app: AppEvents, twilio: TwilioDouble, phone: Phone) -> None:
    app, _ = twilio_app
    params = twilio.inbound_params(phone(), OUR_NUMBER, "forged")
    inbound = url(app, "/sms/twilio/inbound")
    assert (await twilio.post(inbound, params, signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA="))[0] \
        == 403
    assert (await twilio.post(inbound, params, signature=""))[0] == 403
    # Signed with another account's token.
    other = TwilioDouble(auth_token="someone-elses-token")
    assert (await other.post(inbound, params))[0] == 403
    # A correct signature over a URL without our token.
    assert (await twilio.post(url(app, "/sms/twilio/inbound", token="nope"), params))[0] \
        == 403
    status_params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    assert (await twilio.post(url(app, "/sms/twilio/status"), status_params,
                              signature="bad"))[0] == 403
    assert await Message.filter(text="forged").count() == 0


async def test_stop_answered_by_twilio_itself_is_not_answered_twice(
        twilio_app: AppEvents, twilio: TwilioDouble, phone: Phone) -> None:
    app, events = twilio_app
    number = phone()
    params = {**twilio.inbound_params(number, OUR_NUMBER, "STOP"), "OptOutType": "STOP"}
    assert (await twilio.post(url(app, "/sms/twilio/inbound"), params))[0] == 200
    stop = await events.inbound_from(number, "STOP")
    assert not await takes_marketing(stop.customer_id, Channel.SMS)
    # Twilio's own list may hold words we do not know: what it says it did is what counts.
    other = phone()
    params = {**twilio.inbound_params(other, OUR_NUMBER, "ARRET"), "OptOutType": "STOP"}
    assert (await twilio.post(url(app, "/sms/twilio/inbound"), params))[0] == 200
    arret = await events.inbound_from(other, "ARRET")
    assert not await takes_marketing(arret.customer_id, Channel.SMS)
    assert arret.conversation_id is None  # recorded, not passed to a manager
    # HELP has no such flag here: we answer it.
    await twilio.post(url(app, "/sms/twilio/inbound"),
                      twilio.inbound_params(number, OUR_NUMBER, "help"))
    [answer] = await twilio.wait_sent(number)
    assert answer.body.startswith("Acme: write your question")
    assert [s.body for s in twilio.sent if s.to == number] == [answer.body]


SERVICE_SID = "MG" + "0123456789abcdef" * 2


@pytest_asyncio.fixture
async def service_app(db: str, twilio: TwilioDouble) -> AsyncIterator[AppEvents]:
    """The service sending through a Twilio Messaging Service instead of a number."""
    async for pair in running(twilio_settings(db, twilio, messaging_service_sid=SERVICE_SID)):
        yield pair


async def test_a_messaging_service_sends_without_a_from_number(
        service_app: AppEvents, twilio: TwilioDouble, phone: Phone) -> None:
    app, events = service_app
    assert app.core is not None
    number = phone()
    await twilio.post(url(app, "/sms/twilio/inbound"),
                      twilio.inbound_params(number, OUR_NUMBER, "hi"))
    inbound = await events.inbound_from(number, "hi")
    reply = await app.core.conversations.send(inbound.customer_id, "Hello from the pool")
    [sms] = await twilio.wait_sent(number)
    # The service picks the sending number: our request names the service and no From.
    assert sms.form["MessagingServiceSid"] == SERVICE_SID and "From" not in sms.form
    await events.delivery(reply.id, DeliveryStatus.SENT)
    assert (await Message.get(id=reply.id)).external_id == sms.sid


async def test_the_double_wants_a_sender_as_twilio_does(twilio: TwilioDouble,
                                                        phone: Phone) -> None:
    messages = f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    auth = {"Authorization": aiohttp.encode_basic_auth(twilio.account_sid, twilio.auth_token)}
    form = {"To": phone(), "Body": "hi", "StatusCallback": "http://127.0.0.1/cb"}
    async with aiohttp.ClientSession(headers=auth) as http:
        for sender, code in (({}, 21603), ({"MessagingServiceSid": "MG123"}, 21705)):
            async with http.post(messages, data={**form, **sender}) as response:
                assert response.status == 400
                assert (await response.json())["code"] == code
    assert twilio.sent == []


async def test_inbound_from_a_sender_id_or_a_new_number_range_is_kept(
        twilio_app: AppEvents, twilio: TwilioDouble) -> None:
    app, events = twilio_app
    for sender in ("ACME", "+15557654321"):
        params = twilio.inbound_params(sender, OUR_NUMBER, f"hello from {sender}")
        status, _ = await twilio.post(url(app, "/sms/twilio/inbound"), params)
        assert status == 200
        message = await events.inbound_from(sender, f"hello from {sender}")
        assert message.external_id == params["MessageSid"]
