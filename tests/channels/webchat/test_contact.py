"""A visitor leaves an email address or a phone number for answers there: a code goes to it
through the outbox, and only that code, typed back, links the address to the visitor's
customer (merging them with the customer who already had it)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from crm.i18n import t
from crm.models import AddressCheck, AuditLog, Customer, Identity, Message
from crm.types import Channel, ConsentSource, InboundMessage
from tests.channels.webchat.conftest import Chat
from tests.support.clock import TravelClock
from tests.support.fake_channel import FakeSender


async def _code(sender: FakeSender, count: int = 1) -> str:
    sent = await sender.wait_sent(count)
    found = re.search(r"\b(\d{6})\b", sent[count - 1].text)
    assert found, sent[count - 1].text
    return found.group(1)


async def test_an_email_joins_the_visitor_once_the_code_comes_back(chat: Chat) -> None:
    visitor = await chat.visitor()
    first = await visitor.says("Please answer by email")
    customer_id = (await Message.get(id=first["id"])).customer_id
    asked = await visitor.call("POST", "/contact", {"address": " Dana@Customer.ORG "})
    assert asked.status == 200 and asked.body == {"channel": "email",
                                                  "address": "dana@customer.org"}
    code = await _code(chat.email)
    mail = chat.email.sent[0]
    assert mail.address == "dana@customer.org" and "Acme" in (mail.subject or "")
    # Not linked before the code comes back: anybody can type anybody's address.
    assert not await Identity.filter(channel=Channel.EMAIL).exists()
    wrong = await visitor.call("POST", "/contact/confirm",
                               {"code": "000000" if code != "000000" else "111111"})
    assert wrong.status == 422 and wrong.body["error"] == "wrong_code"
    assert wrong.body["left"] == 4
    done = await visitor.call("POST", "/contact/confirm", {"code": f" {code[:3]} {code[3:]} "})
    assert done.status == 200 and done.body == {"channel": "email",
                                                "address": "dana@customer.org"}
    email = await Identity.get(channel=Channel.EMAIL, address="dana@customer.org")
    assert email.customer_id == customer_id
    assert await AuditLog.filter(action="identity.linked", customer_id=customer_id).exists()
    # Used: the same code again does nothing more.
    again = await visitor.call("POST", "/contact/confirm", {"code": code})
    assert again.status == 422 and again.body["error"] == "no_code"
    # They asked for the answer by email and may have left the page: a manager's reply (from
    # the topic, the console: no channel chosen) goes there, not to the chat.
    manager = await chat.manager()
    reply = await chat.core.conversations.send(customer_id, "Answered by mail", author=manager)
    assert reply.channel is Channel.EMAIL
    await chat.email.wait_sent(2)
    assert chat.email.sent[1].address == "dana@customer.org"
    assert chat.email.sent[1].text.startswith("Answered by mail")
    # Back in the chat: answers come to the chat again.
    await visitor.says("Still here, thanks")
    back = await chat.core.conversations.send(customer_id, "Answered in the chat", author=manager)
    assert back.channel is Channel.WEBCHAT


async def test_an_address_of_another_customer_merges_but_shows_none_of_their_mail(
        chat: Chat) -> None:
    older = await chat.core.timeline.ingest(InboundMessage(
        Channel.EMAIL, "mail-1@customer.org", "dana@customer.org", text="my private order",
        sender_name="Dana"))
    visitor = await chat.visitor()
    await visitor.says("it is Dana")
    await visitor.call("POST", "/contact", {"address": "dana@customer.org"})
    code = await _code(chat.email)
    await visitor.listen()
    done = await visitor.call("POST", "/contact/confirm", {"code": code})
    assert done.status == 200
    identity = await Identity.get(channel=Channel.WEBCHAT, address=await _visitor_address())
    assert identity.customer_id == older.customer_id  # the older customer survives
    assert (await Customer.get(id=older.customer_id)).name == "Dana"
    page = await visitor.history()
    assert [m["text"] for m in page["messages"]] == ["it is Dana", t("ack", "en")]
    # The visitor's open page hears the merged customer's replies.
    reply = await chat.core.conversations.send(older.customer_id, "Hello Dana",
                                               author=await chat.manager())
    got = await visitor.wait_for(lambda: next(
        (m for m in visitor.received if m["id"] == reply.id), None))
    assert got["text"] == "Hello Dana"


async def _visitor_address() -> str:
    identity = await Identity.filter(channel=Channel.WEBCHAT).first()
    assert identity is not None
    return identity.address


async def test_a_phone_number_gets_its_code_by_sms(chat: Chat) -> None:
    visitor = await chat.visitor()
    await visitor.says("text me")
    asked = await visitor.call("POST", "/contact", {"address": "(202) 555-0143"})
    assert asked.status == 200 and asked.body == {"channel": "sms", "address": "+12025550143"}
    code = await _code(chat.sms)
    assert chat.sms.sent[0].address == "+12025550143"
    assert (await visitor.call("POST", "/contact/confirm", {"code": code})).status == 200
    assert await Identity.filter(channel=Channel.SMS, address="+12025550143").exists()


async def test_what_is_refused(chat_with: Callable[..., Awaitable[Chat]]) -> None:
    clock = TravelClock()
    chat = await chat_with(clock=clock, webchat={"codes_per_hour": 3, "code_attempts": 2,
                                                 "visitor_burst": 100})
    visitor = await chat.visitor()
    early = await visitor.call("POST", "/contact", {"address": "a@customer.org"})
    assert early.status == 409 and early.body["error"] == "write_first"
    await visitor.says("hello")
    for bad in ("not an address", "12", "@", "a@b"):
        answer = await visitor.call("POST", "/contact", {"address": bad})
        assert answer.status == 422 and answer.body["error"] == "invalid", bad
    # Tries: two, then the code is spent.
    await visitor.call("POST", "/contact", {"address": "a@customer.org"})
    code = await _code(chat.email)
    for _ in range(2):
        wrong = await visitor.call("POST", "/contact/confirm", {"code": "999999"
                                                                if code != "999999" else "1"})
        assert wrong.status == 422
    late = await visitor.call("POST", "/contact/confirm", {"code": code})
    assert late.status == 422 and late.body["error"] == "no_code"
    # Time: a code is good for code_minutes.
    await visitor.call("POST", "/contact", {"address": "a@customer.org"})
    code = await _code(chat.email, 2)
    clock.advance(minutes=16)
    expired = await visitor.call("POST", "/contact/confirm", {"code": code})
    assert expired.status == 422 and expired.body["error"] == "no_code"
    # How many: codes_per_hour for one visitor.
    await visitor.call("POST", "/contact", {"address": "a@customer.org"})
    many = await visitor.call("POST", "/contact", {"address": "a@customer.org"})
    assert many.status == 429 and many.body["error"] == "too_many"
    assert await AddressCheck.all().count() == 3
    assert not await Identity.filter(channel=Channel.EMAIL).exists()


async def test_a_number_that_said_stop_gets_no_code(chat: Chat) -> None:
    stopped = await chat.core.timeline.ingest(InboundMessage(
        Channel.SMS, "sms-stop-1", "+12025550199", text="STOP"))
    await chat.core.consent.stop(stopped.customer_id, Channel.SMS, source=ConsentSource.KEYWORD,
                                 actor="customer")
    visitor = await chat.visitor()
    await visitor.says("hi")
    refused = await visitor.call("POST", "/contact", {"address": "+1 202 555 0199"})
    assert refused.status == 422 and refused.body["error"] == "stopped"
    assert chat.sms.sent == []
