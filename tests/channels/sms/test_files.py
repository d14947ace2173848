"""Files by SMS: Twilio MMS both ways (the double fetches and serves media), and a signed,
expiring download link through a real Kannel."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import aiohttp

from crm.app import App
from crm.clock import utcnow
from crm.files import FileLinks
from crm.links import Signer
from crm.models import Message
from crm.types import DeliveryStatus, Direction
from tests.channels.sms.conftest import OUR_NUMBER, TOKEN, Events
from tests.conftest import LINK_SECRET
from tests.support.kannel import FakeSmsc
from tests.support.twilio_double import TwilioDouble

Phone = Callable[[], str]
AppEvents = tuple[App, Events]
PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


def url(app: App, path: str) -> str:
    return f"{app.settings.http.public_url}{path}?token={TOKEN}"


async def test_an_mms_from_a_customer_is_kept_byte_for_byte(
        twilio_app: AppEvents, twilio: TwilioDouble, phone: Phone) -> None:
    app, events = twilio_app
    number = phone()
    params = twilio.inbound_params(number, OUR_NUMBER, "the broken part",
                                   media=((PICTURE, "image/png"),))
    assert (await twilio.post(url(app, "/sms/twilio/inbound"), params))[0] == 200
    message = await events.inbound_from(number, "the broken part")
    [attachment] = message.attachments
    assert attachment["kind"] == "photo" and attachment["mime_type"] == "image/png"
    assert Path(str(attachment["path"])).read_bytes() == PICTURE
    # Fetched with the account's Basic auth, as Twilio's protected media requires.
    assert twilio.media_requests[0]["auth"].startswith("Basic ")


async def test_a_manager_s_file_goes_as_mms_which_twilio_fetches_from_us(
        twilio_app: AppEvents, twilio: TwilioDouble, phone: Phone) -> None:
    app, events = twilio_app
    assert app.core is not None
    number = phone()
    await twilio.post(url(app, "/sms/twilio/inbound"),
                      twilio.inbound_params(number, OUR_NUMBER, "photo of the label?"))
    inbound = await events.inbound_from(number, "photo of the label?")
    stored = app.core.files.save(PICTURE, kind="photo", filename="label.png",
                                 mime_type="image/png")
    reply = await app.core.conversations.send(inbound.customer_id, "Here:",
                                              attachments=(stored,))
    [sms] = await twilio.wait_sent(number)
    await events.delivery(reply.id, DeliveryStatus.SENT)
    assert sms.body == "Here:" and sms.media == [("image/png", PICTURE)]
    assert sms.form["MediaUrl"].startswith(f"{app.settings.http.public_url}/f/")
    assert (await Message.get(id=reply.id)).meta["mms"] == 1


async def test_without_mms_the_sms_carries_a_signed_link_that_expires(
        kannel_app: AppEvents, smsc: FakeSmsc, phone: Phone) -> None:
    app, events = kannel_app
    assert app.core is not None
    number = phone()
    await smsc.deliver(number, OUR_NUMBER, "send the manual")
    inbound = await events.inbound_from(number, "send the manual")
    manual = b"%PDF-1.4 " + bytes(range(256)) * 20
    stored = app.core.files.save(manual, kind="document", filename="Руководство.pdf",
                                 mime_type="application/pdf")
    reply = await app.core.conversations.send(inbound.customer_id, "The manual:",
                                              attachments=(stored,))
    [sms] = await smsc.wait(number)
    await events.delivery(reply.id, DeliveryStatus.DELIVERED)
    text = sms.text
    assert text.startswith("The manual: ")
    [link] = re.findall(r"https?://\S+/f/\S+", text)
    async with aiohttp.ClientSession() as http:
        async with http.get(link) as got:
            assert got.status == 200 and await got.read() == manual
            assert got.headers["Content-Type"] == "application/pdf"
            assert "filename*=UTF-8''" in got.headers["Content-Disposition"]
        body, _, _mac = link.rpartition("/f/")[2].partition(".")
        forged = link.replace(body, body[:-2] + ("AA" if body[-2:] != "AA" else "BB"))
        async with http.get(forged) as got:
            assert got.status == 403
        old = FileLinks(app.settings.http.public_url,
                        Signer(LINK_SECRET, lambda: utcnow() - timedelta(hours=2)), 1)
        async with http.get(await old.url(reply.id, 0)) as got:
            assert got.status == 410
        other = FileLinks(app.settings.http.public_url,
                          Signer("another-secret-0123456789abcdef0", utcnow), 1)
        async with http.get(await other.url(reply.id, 0)) as got:
            assert got.status == 403
    assert (await Message.get(id=reply.id)).direction is Direction.OUT
