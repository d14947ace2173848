"""The email channel as a user meets it: real Dovecot (IMAP IDLE), real SMTP (aiosmtpd), the
whole service running in-process."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest
import structlog
import structlog.testing

from crm.errors import SendRejected
from crm.events import MessageReceived
from crm.models import Conversation, Cursor, Identity, Message, Outbox
from crm.types import DeliveryStatus, Direction, OutboxState
from tests.channels.email.conftest import SUPPORT, mail, running, sample
from tests.support.dovecot import Dovecot, wait_until
from tests.support.smtp import SmtpServer
from tests.support.telegram_double import GROUP, TelegramDouble, telegram_settings
from tests.support.telegram_fixtures import add_manager


def uid() -> str:
    return uuid.uuid4().hex[:12]


async def test_new_mail_appears_in_the_timeline_through_idle(
        settings_for: Any, dovecot: Dovecot, mailbox: str) -> None:
    # poll_interval is 60 s: arriving within seconds proves IDLE, not the re-check.
    async with running(settings_for()) as svc:
        await svc.idle()
        await dovecot.append(mailbox, mail("Ann <ann@example.com>", "Where is my order?",
                                           "Hello, order 42 please.", message_id="m1@ex.com"))
        event = (await svc.inbox.wait(1))[0]
        message = await Message.get(id=event.message_id)
        assert message.text == "Hello, order 42 please."
        assert message.external_id == "m1@ex.com"
        assert message.direction is Direction.IN
        assert message.meta["headers"]["subject"] == "Where is my order?"  # type: ignore[index]
        identity = await Identity.get(id=message.identity_id)
        assert identity.address == "ann@example.com"
        conversation = await Conversation.get(id=message.conversation_id)
        assert conversation.subject == "Where is my order?"
        assert svc.runtime.health().state == "up"


async def first_mail(svc: Any, dovecot: Dovecot, mailbox: str, sender: str,
                     subject: str = "Order", body: str = "Hi") -> Message:
    count = len(svc.inbox.events)
    await dovecot.append(mailbox, mail(sender, subject, body, message_id=f"{uid()}@customer.org"))
    event = (await svc.inbox.wait(count + 1))[count]
    return await Message.get(id=event.message_id)


async def test_manager_reply_is_threaded_and_the_customer_reply_joins_the_conversation(
        settings_for: Any, dovecot: Dovecot, smtp: SmtpServer, mailbox: str) -> None:
    customer = f"c{uid()}@customer.org"
    async with running(settings_for()) as svc:
        await svc.idle()
        inbound = await first_mail(svc, dovecot, mailbox, f"Cat <{customer}>", "Broken kettle",
                                   "It leaks.")
        out = await svc.core.conversations.send(inbound.customer_id,
                                                "We'll swap it <b>today</b> & call you.")
        sent = (await smtp.wait_for(customer))[0]
        m = sent.mail
        assert m["Subject"] == "Re: Broken kettle"
        assert m["In-Reply-To"] == f"<{inbound.external_id}>"
        assert f"<{inbound.external_id}>" in m["References"]
        assert m["Message-ID"].endswith("@example.com>") and m["Date"]
        assert m["From"] == f"Example Support <{SUPPORT}>"
        html = m.get_body(("html",)).get_content()
        assert "&lt;b&gt;today&lt;/b&gt; &amp; call" in html and "<b>" not in html
        assert m.get_body(("plain",)).get_content().startswith("We'll swap it <b>today</b>")
        # The outgoing message is known by its Message-ID once sent.
        await wait_until(lambda: _status(out.id, DeliveryStatus.SENT), what="sent status")
        out = await Message.get(id=out.id)
        assert f"<{out.external_id}>" == m["Message-ID"]
        # The customer answers from a client that keeps the thread headers.
        count = len(svc.inbox.events)
        await dovecot.append(mailbox, mail(customer, "Re: Broken kettle", "Great, thanks!",
                                           message_id=f"{uid()}@customer.org",
                                           headers={"In-Reply-To": m["Message-ID"],
                                                    "References": m["References"] + " "
                                                    + m["Message-ID"]}))
        reply = await Message.get(id=(await svc.inbox.wait(count + 1))[count].message_id)
        assert reply.reply_to == out.external_id
        assert reply.conversation_id == inbound.conversation_id == out.conversation_id
        assert out.external_id in reply.meta["thread_refs"]  # type: ignore[operator]


async def _status(message_id: int, status: DeliveryStatus) -> bool:
    message = await Message.get(id=message_id)
    return message.delivery_status is status


async def test_restart_mid_stream_loses_and_duplicates_nothing(
        settings_for: Any, dovecot: Dovecot, mailbox: str) -> None:
    settings = settings_for()
    ids = [f"s{n}-{uid()}@ex.com" for n in range(12)]
    async with running(settings) as svc:
        await svc.idle()
        for mid in ids[:8]:
            await dovecot.append(mailbox, mail("Stream <stream@example.com>", "s", mid,
                                               message_id=mid))
        await svc.inbox.wait(2)  # stop while the rest is still being read
    for mid in ids[8:]:  # arrives while the service is down
        await dovecot.append(mailbox, mail("Stream <stream@example.com>", "s", mid,
                                           message_id=mid))
    async with running(settings) as svc:
        await wait_until(lambda: _count_in(), what="all 12 mails")
        await svc.idle()
    stored = await Message.filter(direction=Direction.IN).values_list("external_id", flat=True)
    assert sorted(stored) == sorted(ids)
    cursor = await Cursor.get(name__startswith="email:imap:")
    assert cursor.value["last_uid"] == 12


async def _count_in() -> bool:
    return await Message.filter(direction=Direction.IN).count() >= 12


async def test_dovecot_restart_and_bye_reconnect_and_catch_up(
        settings_for: Any, dovecot: Dovecot, mailbox: str) -> None:
    async with running(settings_for()) as svc:
        await svc.idle()
        reader = svc.runtime.reader
        sessions = reader.sessions
        await dovecot.kick(mailbox)  # BYE during IDLE: aioimaplib raises nothing on its own
        await wait_until(lambda: _async(reader.sessions > sessions), what="reconnect after BYE")
        await svc.idle()
        await dovecot.stop_async()
        await wait_until(lambda: _async(reader.health().state == "down"), what="down")
        assert "reconnecting" in reader.health().detail
        await dovecot.start_async()
        # Sent while the reader may still be waiting to reconnect: caught up either way.
        await dovecot.append(mailbox, mail("Late <late@example.com>", "during outage", "late"))
        await svc.inbox.wait(1)
        await svc.idle()
        assert reader.health().state == "up" and reader.sessions >= sessions + 2
        await dovecot.append(mailbox, mail("Late <late@example.com>", "after", "after"))
        await svc.inbox.wait(2)
    assert await Message.filter(direction=Direction.IN).count() == 2


async def _async(value: bool) -> bool:
    return value


async def test_uidvalidity_change_resyncs_without_duplicates(
        settings_for: Any, dovecot: Dovecot, mailbox: str) -> None:
    client = await dovecot.client(mailbox)
    await client.create("Support")
    await client.logout()
    settings = settings_for(imap_folder="Support")
    a = mail("Ann <ann@example.com>", "a", "first", message_id="uv-a@ex.com")
    b = mail("Ann <ann@example.com>", "b", "second", message_id="uv-b@ex.com")
    async with running(settings) as svc:
        await svc.idle()
        await dovecot.append(mailbox, a, "Support")
        await dovecot.append(mailbox, b, "Support")
        await svc.inbox.wait(2)
    old = (await Cursor.get(name__startswith="email:imap:")).value["uidvalidity"]
    await dovecot.recreate_folder(mailbox, "Support")  # the server renumbers everything
    await dovecot.append(mailbox, b, "Support")
    await dovecot.append(mailbox, mail("Ann <ann@example.com>", "c", "third",
                                       message_id="uv-c@ex.com"), "Support")
    async with running(settings) as svc:
        await svc.inbox.wait(1)
        await svc.idle()
    stored = await Message.filter(direction=Direction.IN).order_by("id").values_list(
        "external_id", flat=True)
    assert stored == ["uv-a@ex.com", "uv-b@ex.com", "uv-c@ex.com"]
    cursor = (await Cursor.get(name__startswith="email:imap:")).value
    assert cursor["uidvalidity"] != old and cursor["last_uid"] == 2


async def test_awkward_mail_is_stored_sensibly(
        settings_for: Any, dovecot: Dovecot, mailbox: str) -> None:
    names = ["wrong_charset.eml", "unknown_charset.eml", "no_message_id.eml", "no_date.eml",
             "eight_bit_headers.eml", "nested_multipart.eml", "html_only.eml",
             "calendar_invite.eml", "big_attachment.eml", "auto_reply.eml", "bounce_dsn.eml",
             "quoted_reply.eml", "outlook_reply.eml"]
    async with running(settings_for(max_attachment_bytes=4000)) as svc:
        await svc.idle()
        for name in names:
            await dovecot.append(mailbox, sample(name))
        await svc.inbox.wait(len(names))
    by_sender = {}
    for m in await Message.exclude(direction=Direction.OUT).prefetch_related("identity"):
        by_sender[m.identity.address] = m
    assert by_sender["irina@example.ru"].text == "Здравствуйте! Где мой заказ? Grüße"
    assert by_sender["petr@example.ru"].text == "Привет из cp1251"
    assert by_sender["noid@example.com"].external_id.endswith("@no-message-id.invalid")
    assert by_sender["nodate@example.com"].sent_at is None
    assert by_sender["sergey@example.ru"].meta["headers"]["subject"] == \
        "Вопрос про доставку — срочно"  # type: ignore[index]
    nested = by_sender["nested@example.com"]
    assert nested.text == "Please see the invoice attached."
    files = {a.get("filename"): a for a in nested.attachments}
    assert set(files) >= {"invoice.pdf", "notes.txt"}
    with open(str(files["notes.txt"]["path"]), "rb") as f:
        assert f.read() == b"some notes"
    assert by_sender["html@example.com"].text == "Hello & welcome,\n\nmy order #123 is late.\nThanks"
    assert "Demo call" in by_sender["cal@example.com"].text
    big = by_sender["big@example.com"].attachments[0]
    assert big["size"] == 6000 and "path" not in big and "over the limit" in big["meta"]["note"]
    # The sender is told at once that the file was not kept; the message itself was.
    answer = await Message.get(direction=Direction.OUT, identity_id=by_sender["big@example.com"]
                               .identity_id)
    assert "could not keep your file" in answer.text and "larger than 4 KB" in answer.text
    ooo = by_sender["ooo@example.com"]
    assert ooo.automated and ooo.direction is Direction.EVENT
    # A report about no mail of ours stays with its real sender: anyone can write one naming
    # someone else's address (a bounce of our own mail lands with the customer: test below).
    assert "gone@example.org" not in by_sender
    bounce = by_sender["mailer-daemon@mx.example.net"]
    assert bounce.automated and "5.1.1" in bounce.text
    quoted = by_sender["ann@example.com"]
    assert quoted.text == "Thanks, that works for me.\nSee you Monday."
    assert "Your order ships on Monday" in quoted.meta["headers"]["original_text"]  # type: ignore[index]
    assert quoted.reply_to == "crm.1.abcdef@example.com"
    assert by_sender["bob@example.com"].text == "Yes please, deliver on Friday."
    # Automated mail opens no conversation and is never routed.
    assert ooo.conversation_id is None and bounce.conversation_id is None


class AckBot:
    """Stands in for the bot: acknowledges every mail a person wrote (never automated ones)."""

    def __init__(self, core: Any) -> None:
        self.core = core
        core.bus.subscribe(MessageReceived, self)

    async def __call__(self, event: MessageReceived) -> None:
        if event.automated or event.channel.value != "email":
            return
        await self.core.conversations.send(event.customer_id, "Thanks, we got your mail.",
                                           author_kind="bot",
                                           idempotency_key=f"ack:{event.message_id}")


def auto_responder(smtp: SmtpServer, dovecot: Dovecot, mailbox: str, address: str,
                   headers: dict[str, str]) -> list[asyncio.Task[int]]:
    """The customer's side: an auto-responder that answers every mail it gets."""
    tasks: list[asyncio.Task[int]] = []

    def answer(item: Any) -> None:
        if address not in item.recipients:
            return
        original = item.mail
        raw = mail(address, f"Auto: {original['Subject']}", "I am away. This is automatic.",
                   message_id=f"{uid()}@customer.org",
                   headers={"In-Reply-To": original["Message-ID"], **headers})
        tasks.append(asyncio.ensure_future(dovecot.append(mailbox, raw)))

    smtp.on_message = answer
    return tasks


async def test_marked_auto_responder_gets_no_answer(
        settings_for: Any, dovecot: Dovecot, smtp: SmtpServer, mailbox: str) -> None:
    address = f"ooo{uid()}@customer.org"
    tasks = auto_responder(smtp, dovecot, mailbox, address, {"Auto-Submitted": "auto-replied"})
    try:
        async with running(settings_for()) as svc:
            AckBot(svc.core)
            await svc.idle()
            await dovecot.append(mailbox, mail(address, "Question", "Hello?",
                                               message_id=f"{uid()}@customer.org"))
            await smtp.wait_for(address, 1)  # our acknowledgement
            events = await svc.inbox.wait(2)  # their auto-reply arrives…
            assert events[1].automated  # …as an event, so the bot stays silent
            await svc.app.core.dispatcher.stop()  # nothing else is queued or in flight
            assert await Outbox.filter(address=address).count() == 1
    finally:
        smtp.on_message = None
    assert len(smtp.to(address)) == 1 and len(tasks) == 1
    reply = await Message.get(id=events[1].message_id)
    assert reply.direction is Direction.EVENT and reply.meta["headers"]["automated"]


async def test_unmarked_auto_responder_is_stopped_by_the_hourly_cap(
        settings_for: Any, dovecot: Dovecot, smtp: SmtpServer, mailbox: str) -> None:
    address = f"bot{uid()}@customer.org"
    auto_responder(smtp, dovecot, mailbox, address, {})  # marks nothing: looks like a person
    try:
        async with running(settings_for(auto_reply_cap_per_hour=3)) as svc:
            AckBot(svc.core)
            await svc.idle()
            await dovecot.append(mailbox, mail(address, "Hi", "Hello?",
                                               message_id=f"{uid()}@customer.org"))
            await svc.inbox.wait(4)  # the first mail and three auto-answers
            await wait_until(lambda: _capped(address), what="the fourth ack cancelled")
    finally:
        smtp.on_message = None
    assert len(smtp.to(address)) == 3
    states = await Outbox.filter(address=address).order_by("id").values_list("state", flat=True)
    assert states == [OutboxState.SENT] * 3 + [OutboxState.CANCELLED]
    capped = await Message.filter(direction=Direction.OUT).order_by("-id").first()
    assert capped is not None and "auto_reply_cap_per_hour" in (capped.delivery_error or "")


async def _capped(address: str) -> bool:
    return await Outbox.filter(address=address, state=OutboxState.CANCELLED).exists()


def dsn(original_id: str, recipient: str, status: str = "5.1.1") -> bytes:
    return f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: {SUPPORT}
Subject: Undelivered Mail Returned to Sender
Message-ID: <{uid()}@mx.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Your message could not be delivered.
--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Action: failed
Status: {status}
Diagnostic-Code: smtp; 550 {status} user unknown
--b
Content-Type: text/rfc822-headers

From: {SUPPORT}
To: {recipient}
Message-ID: <{original_id}>
--b--
""".replace("\n", "\r\n").encode()


async def test_a_bounce_fails_the_message_and_marks_the_address(
        settings_for: Any, dovecot: Dovecot, smtp: SmtpServer, mailbox: str) -> None:
    customer = f"gone{uid()}@customer.org"
    async with running(settings_for()) as svc:
        await svc.idle()
        inbound = await first_mail(svc, dovecot, mailbox, customer)
        out = await svc.core.conversations.send(inbound.customer_id, "Your answer")
        await smtp.wait_for(customer)
        await wait_until(lambda: _status(out.id, DeliveryStatus.SENT), what="sent")
        out = await Message.get(id=out.id)
        count = len(svc.inbox.events)
        await dovecot.append(mailbox, dsn(out.external_id or "", customer))
        event = (await svc.inbox.wait(count + 1))[count]
        assert event.automated
        await wait_until(lambda: _status(out.id, DeliveryStatus.FAILED), what="failed")
        out = await Message.get(id=out.id)
        assert "5.1.1" in (out.delivery_error or "")
        identity = await Identity.get(address=customer)
        assert identity.undeliverable_reason and "5.1.1" in identity.undeliverable_reason
        with pytest.raises(SendRejected, match="cannot be reached"):
            await svc.core.conversations.send(inbound.customer_id, "Another")


async def test_smtp_down_queues_and_delivers_once_back(
        settings_for: Any, dovecot: Dovecot, smtp: SmtpServer, mailbox: str) -> None:
    customer = f"patient{uid()}@customer.org"
    async with running(settings_for()) as svc:
        await svc.idle()
        inbound = await first_mail(svc, dovecot, mailbox, customer)
        smtp.stop()
        try:
            out = await svc.core.conversations.send(inbound.customer_id, "Eventually")
            await wait_until(lambda: _retried(out.id), what="a failed attempt")
            assert svc.runtime.health().state == "down"
            assert "SMTP" in svc.runtime.health().detail
        finally:
            smtp.start()
        await smtp.wait_for(customer, 1)
        await wait_until(lambda: _status(out.id, DeliveryStatus.SENT), what="sent")
        # More mail reuses the one connection.
        before = smtp.connections
        for n in range(5):
            await svc.core.conversations.send(inbound.customer_id, f"more {n}")
        await smtp.wait_for(customer, 6)
        assert smtp.connections == before
        assert svc.runtime.health().state == "up"
    assert len(smtp.to(customer)) == 6


async def _retried(message_id: int) -> bool:
    row = await Outbox.get(message_id=message_id)
    return row.state is OutboxState.QUEUED and row.attempts >= 1 and bool(row.last_error)


async def test_refused_recipient_is_permanent(
        settings_for: Any, dovecot: Dovecot, smtp: SmtpServer, mailbox: str) -> None:
    customer = f"nobody{uid()}@customer.org"
    smtp.refuse[customer] = "550 5.1.1 no such user"
    try:
        async with running(settings_for()) as svc:
            await svc.idle()
            inbound = await first_mail(svc, dovecot, mailbox, customer)
            out = await svc.core.conversations.send(inbound.customer_id, "Hello")
            await wait_until(lambda: _status(out.id, DeliveryStatus.FAILED), what="failed")
    finally:
        smtp.refuse.clear()
    row = await Outbox.get(message_id=out.id)
    assert row.state is OutboxState.FAILED and row.attempts == 1
    assert "550" in (row.last_error or "")
    identity = await Identity.get(address=customer)
    assert identity.undeliverable_reason


async def test_wrong_imap_password_is_a_clear_error_retried_with_backoff(
        settings_for: Any, mailbox: str) -> None:
    with structlog.testing.capture_logs() as logs:
        async with running(settings_for(imap_password="wrong")) as svc:
            reader = svc.runtime.reader
            await wait_until(lambda: _async(reader.login_failures >= 1), what="an attempt")
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{svc.app.http.port}/healthz"  # type: ignore[union-attr]
                async with http.get(url) as response:
                    body = await response.json()
                    assert response.status == 503
            detail = body["channels"]["email"]["detail"]
            assert body["channels"]["email"]["state"] == "down"
            assert "IMAP login" in detail and "imap_password" in detail
            assert "retrying in" in detail
    failures = [e for e in logs if e["event"] == "email.imap_login_failed"]
    assert failures and "imap_password" in failures[0]["detail"]
    # Not hammering: the next attempt waits auth_retry_base (0.2 s here, 30 s by default) and
    # longer after each failure (tests/channels/email/test_reader.py checks the schedule).
    assert reader.login_failures <= 5


async def test_a_mail_that_cannot_be_stored_is_skipped_not_blocking_the_mailbox(
        settings_for: Any, dovecot: Dovecot, mailbox: str) -> None:
    async with running(settings_for()) as svc:
        await svc.idle()

        async def refuse(event: MessageReceived) -> None:
            message = await Message.get(id=event.message_id)
            if "poison" in message.text:
                raise RuntimeError("this mail breaks something of ours")

        svc.core.bus.subscribe(MessageReceived, refuse, phase="in_transaction")
        await dovecot.append(mailbox, mail("Eve <eve@example.com>", "x", "poison",
                                           message_id="poison@ex.com"))
        await dovecot.append(mailbox, mail("Ann <ann@example.com>", "y", "fine",
                                           message_id="fine@ex.com"))
        events = await svc.inbox.wait(1, timeout=30)
        assert (await Message.get(id=events[0].message_id)).text == "fine"
    assert not await Message.filter(external_id="poison@ex.com").exists()


async def test_uidvalidity_change_on_a_quiet_mailbox_imports_no_old_mail(
        settings_for: Any, dovecot: Dovecot, mailbox: str) -> None:
    """The folder is renumbered and holds only old mail: none of it is taken as new."""
    client = await dovecot.client(mailbox)
    await client.create("Quiet")
    await client.logout()
    settings = settings_for(imap_folder="Quiet")
    async with running(settings) as svc:
        await svc.idle()  # the first start's checkpoint: only mail from now on
    await dovecot.recreate_folder(mailbox, "Quiet")
    long_ago = datetime.now(UTC) - timedelta(days=60)
    for n in range(3):
        await dovecot.append(mailbox, mail("Old <old@example.com>", "old", f"old {n}",
                                           message_id=f"old-{n}@ex.com"), "Quiet", date=long_ago)
    async with running(settings) as svc:
        await svc.idle()
        await dovecot.append(mailbox, mail("Ann <ann@example.com>", "new", "new one",
                                           message_id="new@ex.com"), "Quiet")
        await svc.inbox.wait(1)
    stored = await Message.filter(direction__in=[Direction.IN, Direction.EVENT]).values_list(
        "external_id", flat=True)
    assert stored == ["new@ex.com"]


async def test_real_world_mail_is_stored_under_its_sender(
        settings_for: Any, dovecot: Dovecot, mailbox: str) -> None:
    """Mail that real clients send (the issue "What failed when real-world input was tried"),
    through Dovecot and the whole service: each lands with its sender, subject and text."""
    names = ["latin1_8bit_headers.eml", "utf7.eml", "utf7_unescaped_plus.eml",
             "mbox_from_line.eml", "mbox_escaped_from_line.eml", "from_without_brackets.eml",
             "utf8_address.eml", "utf8_address_idn.eml"]
    async with running(settings_for(fallback_charsets=["cp1252"])) as svc:
        await svc.idle()
        for name in names:
            await dovecot.append(mailbox, sample(name))
        # No charset declared anywhere: the configured fallbacks decide.
        await dovecot.append(mailbox, sample("latin1_8bit_headers.eml").replace(
            b"Content-Type: text/plain; charset=iso-8859-1\r\n", b"").replace(
            b"juergen@", b"j.k@").replace(b"latin1-8bit-1@", b"latin1-8bit-2@"))
        # The reader takes mail in UID order: once the last one is in, every one before it was
        # either stored or skipped.
        await dovecot.append(mailbox, mail("Last <last@example.com>", "last", "last"))
        await stored_from(svc, "last@example.com")
    stored = {}
    for m in await Message.all().prefetch_related("identity", "conversation", "customer"):
        stored[m.identity.address] = m

    def subject(address: str) -> str:
        return str(stored[address].meta["headers"]["subject"])  # type: ignore[index]

    assert subject("juergen@example.de") == "Die Hasen und die Frösche"
    assert stored["juergen@example.de"].customer.name == "Jürgen Kästner"
    assert subject("j.k@example.de") == "Die Hasen und die Frösche"
    assert subject("anna@example.at") == "Die Hasen und die Frösche"
    assert stored["anna@example.at"].text == "Wo bleiben die Frösche? Grüße"
    assert subject("anna.weiss@example.at") == "Rückruf bitte"
    assert stored["carl@example.org"].external_id == "mbox-1@example.org"
    assert subject("dora@example.net") == "Re-sent from my archive"
    assert stored["dora@example.net"].external_id == "mbox-2@example.net"
    assert subject("bb@bug.com") == "bug report"
    assert stored["bb@bug.com"].customer.name == "Big Bug"
    assert subject("josé@example.com") == "Pedido número 7"
    assert stored["josé@example.com"].customer.name == "José Núñez"
    ivan = stored["иван@xn--e1afmkfd.xn--p1ai"]
    assert ivan.conversation.subject == "Где заказ?"
    assert ivan.text == "Здравствуйте, где мой заказ?"
    assert len(stored) == len(names) + 2


async def stored_from(svc: Any, address: str) -> Message:
    """The first mail stored from `address`, awaited through the events of the ingest."""
    seen = 0
    while True:
        event = (await svc.inbox.wait(seen + 1))[seen]
        seen += 1
        message = await Message.get(id=event.message_id).prefetch_related("identity")
        if message.identity.address == address:
            return message


async def test_a_manager_s_file_and_a_canned_reply_in_the_topic_reach_the_customer_by_mail(
        settings_for: Any, dovecot: Dovecot, smtp: SmtpServer, mailbox: str,
        tg: TelegramDouble) -> None:
    customer = f"f{uid()}@customer.org"
    manual = b"%PDF-1.4 " + bytes(range(256)) * 30
    _, bob = await add_manager(9401, "Bob")
    async with running(settings_for(sections={"telegram": telegram_settings(tg)})) as svc:
        await svc.idle()
        await svc.core.replies.add("bye", "<b>Thanks</b>, {{ customer.name }}!", html=True)
        await first_mail(svc, dovecot, mailbox, f"Zoë <{customer}>", "Manual",
                         "Please send the manual")
        thread = await tg.topic_of("Please send the manual")
        sent = tg.manager_says(GROUP, bob, "", thread, **tg.file_message(
            "document", manual, "manual.pdf", "application/pdf", caption="Attached."))
        await smtp.wait_for(customer)
        tg.manager_says(GROUP, bob, "/r bye", thread)
        first, second = await smtp.wait_for(customer, 2)
        key = (GROUP, sent["message"]["message_id"])
        assert await tg.wait_for(lambda: tg.reactions.get(key)) == ["👍"]  # delivery shown
    [part] = list(first.mail.iter_attachments())
    assert part.get_filename() == "manual.pdf" and part.get_content() == manual
    assert "Attached." in first.mail.get_body(("plain",)).get_content()
    html = second.mail.get_body(("html",)).get_content()
    assert "<b>Thanks</b>, Zoë!" in html
    assert second.mail.get_body(("plain",)).get_content().strip() == "Thanks, Zoë!"
    assert "Thanks, Zoë!" in tg.topic_text(thread)  # the team reads what Zoë got


async def test_a_customer_s_attachment_reaches_the_topic_as_the_file_itself(
        settings_for: Any, dovecot: Dovecot, mailbox: str, tg: TelegramDouble) -> None:
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 80
    mail_ = EmailMessage()
    mail_["From"], mail_["To"] = f"Ann <a{uid()}@customer.org>", SUPPORT
    mail_["Subject"], mail_["Message-ID"] = "Damaged box", f"<{uid()}@customer.org>"
    mail_.set_content("The box arrived like this.")
    mail_.add_attachment(picture, maintype="image", subtype="png", filename="коробка 1.png")
    async with running(settings_for(sections={"telegram": telegram_settings(tg)})) as svc:
        await svc.idle()
        await dovecot.append(mailbox, mail_.as_bytes())
        [shown] = await tg.wait_for(lambda: tg.files_to(GROUP))
    assert shown.file is not None and shown.file.data == picture  # uploaded byte for byte
    assert shown.file.filename == "коробка 1.png"  # as named, not percent-encoded
    assert shown.method == "sendPhoto" and shown.thread_id is not None
    assert "The box arrived like this." in shown.text and "Damaged box" in shown.text


async def test_an_edit_of_an_email_reply_is_kept_and_the_manager_is_told(
        settings_for: Any, dovecot: Dovecot, smtp: SmtpServer, mailbox: str,
        tg: TelegramDouble) -> None:
    customer = f"d{uid()}@customer.org"
    _, bob = await add_manager(9402, "Bob")
    async with running(settings_for(sections={"telegram": telegram_settings(tg)})) as svc:
        await svc.idle()
        await first_mail(svc, dovecot, mailbox, f"Dora <{customer}>", "Invoice", "Invoice?")
        thread = await tg.topic_of("Invoice?")
        reply = tg.manager_says(GROUP, bob, "Sent yesterdya", thread)
        [sent] = await smtp.wait_for(customer)
        await tg.wait_for(lambda: tg.reactions.get((GROUP, reply["message"]["message_id"])))
        tg.edit(reply, "Sent yesterday")
        await tg.wait_for(lambda: "Edited in the timeline only: email" in tg.topic_text(thread))
    assert len(smtp.to(customer)) == 1  # no second mail: mail cannot be changed once sent
    assert "Sent yesterdya" in sent.mail.get_body(("plain",)).get_content()
    out = await Message.get(direction=Direction.OUT, author_kind="manager")
    assert out.text == "Sent yesterday" and out.delivery_status is DeliveryStatus.SENT
    assert [e["text"] for e in out.meta["edits"]] == ["Sent yesterdya"]  # type: ignore[union-attr]
