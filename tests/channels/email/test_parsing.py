"""Raw mail → what the CRM stores, on recorded awkward samples; no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.email.headers import decode_bytes
from channels.email.parsing import calendar_summary, parse_mail, to_inbound
from crm.types import Channel
from tests.channels.email.conftest import sample

OURS = frozenset({"support@example.com"})


def parse(name: str):  # type: ignore[no-untyped-def]
    return parse_mail(sample(name), OURS)


@pytest.mark.parametrize(("name", "text"), [
    ("wrong_charset.eml", "Здравствуйте! Где мой заказ? Grüße"),  # says latin-1, is UTF-8
    ("unknown_charset.eml", "Привет из cp1251"),  # an unknown charset name, cp1251 bytes
    ("eight_bit_headers.eml", "Когда привезут?"),
    ("html_only.eml", "Hello & welcome,\n\nmy order #123 is late.\nThanks"),
    ("nested_multipart.eml", "Please see the invoice attached."),
    ("quoted_reply.eml", "Thanks, that works for me.\nSee you Monday."),
    ("outlook_reply.eml", "Yes please, deliver on Friday."),
    ("calendar_invite.eml", "[calendar request] Demo call, 20250115T100000Z, Zoom"),
])
def test_text_for_managers(name: str, text: str) -> None:
    assert parse(name).text == text


def test_headers_in_any_encoding() -> None:
    m = parse("eight_bit_headers.eml")
    assert m.subject == "Вопрос про доставку — срочно" and m.sender_name == "Сергей Иванов"
    assert parse("wrong_charset.eml").subject == "Bestellung für Müller"
    assert parse("wrong_charset.eml").sender_name == "Ирина"


def test_missing_message_id_is_synthesized_stably() -> None:
    a, b = parse("no_message_id.eml"), parse("no_message_id.eml")
    assert a.synthesized_id and a.message_id == b.message_id
    assert a.headers["message_id_synthesized"] is True
    other = parse_mail(sample("no_message_id.eml").replace(b"sent no", b"sent NO"), OURS)
    assert other.message_id != a.message_id


def test_missing_or_broken_date() -> None:
    assert parse("no_date.eml").sent_at is None
    assert parse("quoted_reply.eml").sent_at == datetime(2025, 1, 14, 10, tzinfo=UTC)
    broken = sample("quoted_reply.eml").replace(b"Tue, 14 Jan 2025 10:00:00 +0000", b"soon")
    assert parse_mail(broken).sent_at is None


def test_threading_references() -> None:
    m = parse("quoted_reply.eml")
    assert m.message_id == "reply-1@example.com"
    assert m.in_reply_to == "crm.1.abcdef@example.com"
    assert m.references == ("first-1@example.com", "crm.1.abcdef@example.com")
    inbound = to_inbound(m)
    assert inbound.channel is Channel.EMAIL and inbound.external_id == "reply-1@example.com"
    assert inbound.reply_to == "crm.1.abcdef@example.com"
    assert inbound.headers["subject"] == "Re: Your order"
    assert "Your order ships on Monday." in inbound.headers["original_text"]


def test_attachments_of_nested_multiparts() -> None:
    parts = parse("nested_multipart.eml").parts
    assert [(p.filename, p.mime_type) for p in parts] == [
        (None, "image/png"), ("invoice.pdf", "application/pdf"), ("notes.txt", "text/plain")]
    assert parts[0].inline and parts[0].content_id == "logo@x"
    assert parts[2].data == b"some notes"


@pytest.mark.parametrize(("name", "reason"), [
    ("auto_reply.eml", "Auto-Submitted: auto-replied"),
    ("bounce_dsn.eml", "Auto-Submitted: auto-replied"),
    ("quoted_reply.eml", None),
])
def test_automated_mail(name: str, reason: str | None) -> None:
    assert parse(name).automated == reason


@pytest.mark.parametrize("header", [
    "Precedence: bulk", "Precedence: junk", "Precedence: list", "X-Auto-Response-Suppress: OOF",
    "X-Loop: support@example.com", "Auto-Submitted: auto-generated",
])
def test_loop_headers(header: str) -> None:
    raw = sample("no_date.eml").replace(b"Subject:", header.encode() + b"\r\nSubject:")
    assert parse_mail(raw, OURS).automated is not None


def test_not_automated_when_told_so() -> None:
    raw = sample("no_date.eml").replace(b"Subject:", b"Auto-Submitted: no\r\n"
                                        b"X-Loop: someone@else.org\r\nSubject:")
    assert parse_mail(raw, OURS).automated is None


def test_bounce_report() -> None:
    m = parse("bounce_dsn.eml")
    assert m.bounce is not None
    assert m.bounce.original_ids == ("crm.1.abcdef@example.com",)
    assert m.bounce.recipient == "gone@example.org"
    assert m.bounce.permanent and m.bounce.status == "5.1.1"
    assert "User unknown" in m.bounce.diagnostic
    assert m.text.startswith("Mail to gone@example.org could not be delivered")


def test_soft_bounce_is_not_permanent() -> None:
    raw = sample("bounce_dsn.eml").replace(b"Status: 5.1.1", b"Status: 4.2.2")
    bounce = parse_mail(raw).bounce
    assert bounce is not None and bounce.failed and not bounce.permanent


def test_plain_text_bounce_found_by_references() -> None:
    raw = (b"From: MAILER-DAEMON@mx.example.net\r\nTo: support@example.com\r\n"
           b"Subject: failure notice\r\nReferences: <crm.7.x@example.com>\r\n\r\n"
           b"Sorry, I couldn't deliver to <x@example.org>: 550 mailbox unavailable\r\n")
    m = parse_mail(raw)
    assert m.automated == "delivery status notification"
    assert m.bounce is not None and m.bounce.original_ids == ("crm.7.x@example.com",)
    assert m.bounce.permanent


def test_garbage_never_raises() -> None:
    for raw in (b"", b"\x00\xff\xfe garbage", b"From: <>\r\n\r\n",
                b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nbroken"):
        m = parse_mail(raw)
        assert m.message_id.endswith("@no-message-id.invalid")


def test_calendar_summary_unfolds_lines() -> None:
    ics = "BEGIN:VEVENT\r\nSUMMARY:Long\r\n  title\r\nDTSTART;TZID=X:20250101T090000\r\nEND"
    assert calendar_summary(ics) == "[calendar invite] Long title, 20250101T090000"


# Mail that failed when real-world input was tried (samples/*.eml, raw bytes as they came).

def test_raw_latin1_headers_follow_the_charset_the_mail_declares() -> None:
    m = parse("latin1_8bit_headers.eml")  # 8-bit ISO-8859-1 in From and Subject, no encoding
    assert m.subject == "Die Hasen und die Frösche"
    assert m.sender_name == "Jürgen Kästner" and m.sender == "juergen@example.de"
    assert m.text == "Guten Tag,\nwann kommen die Frösche? Grüße"


def test_declared_charsets_then_utf8_then_the_configured_fallbacks() -> None:
    raw = sample("latin1_8bit_headers.eml")
    # Without a declaration, UTF-8 is tried first and then the fallbacks in their order.
    undeclared = raw.replace(b"Content-Type: text/plain; charset=iso-8859-1\r\n", b"")
    assert parse_mail(undeclared).subject == "Die Hasen und die Frцsche"  # cp1251 first
    assert parse_mail(undeclared, fallback_charsets=["cp1252"]).subject == \
        "Die Hasen und die Frösche"
    # A declaration wins over the fallbacks.
    assert parse_mail(raw, fallback_charsets=["koi8-r"]).subject == "Die Hasen und die Frösche"


def test_a_header_mixing_raw_bytes_and_encoded_words() -> None:
    raw = sample("latin1_8bit_headers.eml").replace(
        b"Subject: Die Hasen", b"Subject: =?utf-8?Q?=E2=80=9EFabel=E2=80=9C:?= Die Hasen")
    assert parse_mail(raw).subject == "„Fabel“: Die Hasen und die Frösche"


@pytest.mark.parametrize(("name", "subject", "text"), [
    ("utf7.eml", "Die Hasen und die Frösche", "Wo bleiben die Frösche? Grüße"),
    ("utf7_unescaped_plus.eml", "Rückruf bitte",
     "Bitte rufen Sie mich zurück: Tel. +43 1 234 5678\nGrüße, Anna"),
])
def test_utf7_body_and_subject(name: str, subject: str, text: str) -> None:
    m = parse(name)
    assert (m.subject, m.text) == (subject, text)


def test_utf7_keeps_what_it_cannot_decode() -> None:
    assert decode_bytes(b"C++ und Fr+APY-sche", "utf-7") == "C++ und Frösche"
    assert decode_bytes(b"Fr+APZ-sche", "UTF-7") == "Frösche"  # stray padding bits
    # Many bad sequences are handled in the codec's one pass, not by decoding again after each.
    assert decode_bytes(b"1+1=2 " * 50_000, "utf-7") == "1+1=2 " * 50_000


@pytest.mark.parametrize(("name", "sender", "subject", "message_id"), [
    ("mbox_from_line.eml", "carl@example.org", "Forwarded from my archive",
     "mbox-1@example.org"),
    ("mbox_escaped_from_line.eml", "dora@example.net", "Re-sent from my archive",
     "mbox-2@example.net"),
])
def test_headers_after_an_mbox_from_line(name: str, sender: str, subject: str,
                                         message_id: str) -> None:
    m = parse(name)
    assert (m.sender, m.subject, m.message_id, m.synthesized_id) == (sender, subject,
                                                                     message_id, False)


def test_from_without_angle_brackets() -> None:
    m = parse("from_without_brackets.eml")  # From: Big Bug bb@bug.com
    assert (m.sender, m.sender_name) == ("bb@bug.com", "Big Bug")
    assert m.headers["from"] == "Big Bug <bb@bug.com>"


@pytest.mark.parametrize(("name", "sender", "sender_name", "subject", "text"), [
    ("utf8_address.eml", "josé@example.com", "José Núñez", "Pedido número 7",
     "¿Dónde está mi pedido?"),
    # Raw UTF-8 headers over a windows-1251 body: each read in its own charset.
    ("utf8_address_idn.eml", "Иван@Пример.РФ", "Иван Петров", "Где заказ?",
     "Здравствуйте, где мой заказ?"),
])
def test_rfc6532_utf8_addresses(name: str, sender: str, sender_name: str, subject: str,
                                text: str) -> None:
    m = parse(name)
    assert (m.sender, m.sender_name, m.subject, m.text) == (sender, sender_name, subject, text)
