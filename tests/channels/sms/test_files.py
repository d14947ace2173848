"""Files by SMS, end to end: Twilio MMS both ways (the double fetches and serves media), a
signed, expiring download link through a real Kannel, and what the managers' chat (the Bot API
double) shows and sends."""

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
from tests.channels.sms.conftest import OUR_NUMBER, TOKEN, Events, serving, twilio_settings
from tests.conftest import LINK_SECRET
from tests.support.kannel import FakeSmsc
from tests.support.telegram_double import GROUP, TelegramDouble
from tests.support.telegram_fixtures import add_manager
from tests.support.twilio_double import TwilioDouble

Phone = Callable[[], str]
AppEvents = tuple[App, Events]
PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


def url(app: App, path: str) -> str:
    return f"{app.settings.http.public_url}{path}?token={TOKEN}"


async def test_an_mms_from_a_customer_is_kept_byte_for_byte_and_shown_as_the_file(
        twilio_desk: AppEvents, twilio: TwilioDouble, tg: TelegramDouble, phone: Phone) -> None:
    app, events = twilio_desk
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
    # The topic gets the photo itself, uploaded from the store, with the text as its caption.
    [shown] = await tg.wait_for(lambda: tg.files_to(GROUP))
    assert shown.method == "sendPhoto" and shown.file is not None
    assert shown.file.data == PICTURE and "the broken part" in shown.text


async def test_an_oversized_mms_gets_a_clear_answer_and_the_message_is_kept(
        db: str, twilio: TwilioDouble, phone: Phone) -> None:
    number = phone()
    settings = twilio_settings(db, twilio, sections={"files": {"max_bytes": 10_000}})
    async with serving(settings) as (app, _events):
        params = twilio.inbound_params(number, OUR_NUMBER, "my receipt",
                                       media=((PICTURE, "image/png"),))  # 16 KB
        assert (await twilio.post(url(app, "/sms/twilio/inbound"), params))[0] == 200
        [answer] = await twilio.wait_sent(number)
    assert "could not keep your file (photo-1.png)" in answer.body
    assert "larger than 10 KB" in answer.body
    stored = await Message.get(direction=Direction.IN, text="my receipt")
    assert "path" not in stored.attachments[0]


async def test_a_manager_s_photo_in_the_topic_goes_as_mms_which_twilio_fetches_from_us(
        twilio_desk: AppEvents, twilio: TwilioDouble, tg: TelegramDouble, phone: Phone) -> None:
    app, _ = twilio_desk
    _, bob = await add_manager(9301, "Bob")
    number = phone()
    await twilio.post(url(app, "/sms/twilio/inbound"),
                      twilio.inbound_params(number, OUR_NUMBER, "photo of the label?"))
    thread = await tg.topic_of("photo of the label?")
    sent = tg.manager_says(GROUP, bob, "", thread, **tg.file_message(
        "document", PICTURE, "label.png", "image/png", caption="Here:"))
    [sms] = await twilio.wait_sent(number)
    key = (GROUP, sent["message"]["message_id"])
    assert await tg.wait_for(lambda: tg.reactions.get(key)) == ["👍"]  # delivery shown
    assert sms.body == "Here:" and sms.media == [("image/png", PICTURE)]
    assert sms.form["MediaUrl"].startswith(f"{app.settings.http.public_url}/f/")
    reply = await Message.get(direction=Direction.OUT, author_kind="manager")
    assert reply.meta["mms"] == 1 and reply.delivery_status is DeliveryStatus.SENT


async def test_files_over_5_mb_in_all_go_as_links_not_as_an_mms_twilio_refuses(
        twilio_app: AppEvents, twilio: TwilioDouble, phone: Phone) -> None:
    app, events = twilio_app
    assert app.core is not None
    number = phone()
    await twilio.post(url(app, "/sms/twilio/inbound"),
                      twilio.inbound_params(number, OUR_NUMBER, "both scans please"))
    inbound = await events.inbound_from(number, "both scans please")
    scans = [app.core.files.save(bytes([n]) * (3 * 1024 * 1024), kind="document",
                                 filename=f"scan{n}.pdf", mime_type="application/pdf")
             for n in (1, 2)]  # 3 MB each: each under Twilio's 5 MB, together over it
    reply = await app.core.conversations.send(inbound.customer_id, "Both:",
                                              attachments=tuple(scans))
    [sms] = await twilio.wait_sent(number)
    await events.delivery(reply.id, DeliveryStatus.SENT)
    links = re.findall(r"https?://\S+/f/\S+", sms.body)
    assert sms.body.startswith("Both: ") and len(links) == 2 and sms.media == []
    async with aiohttp.ClientSession() as http, http.get(links[1]) as got:
        assert await got.read() == bytes([2]) * (3 * 1024 * 1024)


async def test_a_canned_reply_and_an_edit_for_an_sms_customer(
        twilio_desk: AppEvents, twilio: TwilioDouble, tg: TelegramDouble, phone: Phone) -> None:
    app, _ = twilio_desk
    assert app.core is not None
    _, bob = await add_manager(9302, "Bob")
    await app.core.replies.add("hours", "<b>{{ company }}</b> is open 9-18.", html=True)
    number = phone()
    await twilio.post(url(app, "/sms/twilio/inbound"),
                      twilio.inbound_params(number, OUR_NUMBER, "when are you open?"))
    thread = await tg.topic_of("when are you open?")
    tg.manager_says(GROUP, bob, "/r hours", thread)
    [hours] = await twilio.wait_sent(number)
    assert hours.body == "Acme is open 9-18."  # plain by SMS
    await tg.wait_for(lambda: "Acme is open 9-18." in tg.topic_text(thread))
    reply = tg.manager_says(GROUP, bob, "We ship on Mnoday", thread)
    await twilio.wait_sent(number, 2)
    await tg.wait_for(lambda: tg.reactions.get((GROUP, reply["message"]["message_id"])))
    tg.edit(reply, "We ship on Monday")
    await tg.wait_for(lambda: "Edited in the timeline only: sms" in tg.topic_text(thread))
    # Nothing more went by SMS; the timeline keeps both versions.
    assert [s.body for s in twilio.sent if s.to == number] == ["Acme is open 9-18.",
                                                               "We ship on Mnoday"]
    out = await Message.get(direction=Direction.OUT, text="We ship on Monday")
    assert [e["text"] for e in out.meta["edits"]] == ["We ship on Mnoday"]  # type: ignore[union-attr]


async def test_without_mms_the_sms_carries_a_signed_link_that_expires(
        kannel_desk: AppEvents, smsc: FakeSmsc, tg: TelegramDouble, phone: Phone) -> None:
    app, events = kannel_desk
    _, bob = await add_manager(9303, "Bob")
    number = phone()
    await smsc.deliver(number, OUR_NUMBER, "send the manual")
    thread = await tg.topic_of("send the manual")
    manual = b"%PDF-1.4 " + bytes(range(256)) * 20
    tg.manager_says(GROUP, bob, "", thread, **tg.file_message(
        "document", manual, "Руководство.pdf", "application/pdf", caption="The manual:"))
    [sms] = await smsc.wait(number)
    reply = await Message.get(direction=Direction.OUT, author_kind="manager")
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
