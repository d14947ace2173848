"""Our outgoing mail: threading headers, escaping, unsubscribe headers; no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

from channels.email.compose import compose, make_message_id, render_html, reply_subject
from crm.types import Channel, Choice, OutboundMessage

NOW = datetime(2025, 1, 14, 10, tzinfo=UTC)


def build(unsubscribe: str | None = None, **kw: object) -> tuple[OutboundMessage, object]:
    msg = OutboundMessage(channel=Channel.EMAIL, address="ann@example.com",
                          text="Hi <Ann> & co\nsee https://x.org/a?b=1&c=2.", outbox_id=7,
                          **kw)  # type: ignore[arg-type]
    mail = compose(msg, from_address="support@shop.example", from_name="Шоп Shop",
                   message_id=make_message_id(msg, "support@shop.example"), now=NOW,
                   default_subject="Your request", unsubscribe_mailbox=unsubscribe)
    # Read back as a mail client would.
    return msg, message_from_bytes(mail.as_bytes(), policy=policy.default)


def test_reply_headers() -> None:
    _, mail = build(subject="Order", reply_to="<c2@cust.org>", thread_refs=("c1@cust.org",))
    assert mail["Subject"] == "Re: Order"  # type: ignore[index]
    assert mail["In-Reply-To"] == "<c2@cust.org>"  # type: ignore[index]
    assert mail["References"] == "<c1@cust.org> <c2@cust.org>"  # type: ignore[index]
    assert mail["Message-ID"].endswith("@shop.example>")  # type: ignore[index]
    assert mail["Date"] == "Tue, 14 Jan 2025 10:00:00 +0000"  # type: ignore[index]
    assert mail["X-Loop"] == "support@shop.example"  # type: ignore[index]
    assert mail["List-Unsubscribe"] is None  # type: ignore[index]


def test_non_ascii_headers_and_attachments() -> None:
    _, mail = build(subject="Заказ №5")
    assert mail["Subject"] == "Заказ №5"  # type: ignore[index]
    assert mail["From"] == "Шоп Shop <support@shop.example>"  # type: ignore[index]
    msg = OutboundMessage(channel=Channel.EMAIL, address="a@b.org", text="see file")
    raw = compose(msg, from_address="s@shop.example", from_name="", message_id="m@shop.example",
                  now=NOW, default_subject="Hi",
                  files=(("счёт.pdf", "application/pdf", b"%PDF"),)).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    files = list(parsed.iter_attachments())  # type: ignore[attr-defined]
    assert [(f.get_filename(), f.get_content()) for f in files] == [("счёт.pdf", b"%PDF")]
    assert parsed.get_body(("plain",)).get_content() == "see file\n"  # type: ignore[attr-defined]


def test_message_id_is_stable_per_outbox_row() -> None:
    msg, _ = build()
    assert make_message_id(msg, "s@shop.example") == make_message_id(msg, "s@shop.example")


def test_subject_rules() -> None:
    assert reply_subject("Re: Order", True, "d") == "Re: Order"
    assert reply_subject("AW: Order", True, "d") == "AW: Order"
    assert reply_subject("Order", False, "d") == "Order"
    assert reply_subject(None, True, "Your request") == "Your request"


def test_html_escapes_customer_text() -> None:
    _, mail = build()
    html = mail.get_body(("html",)).get_content()  # type: ignore[attr-defined]
    assert "Hi &lt;Ann&gt; &amp; co<br>" in html
    assert '<a href="https://x.org/a?b=1&amp;c=2">' in html
    assert "<Ann>" not in html
    assert render_html('<script>"x"</script>').count("<script>") == 0


def test_campaign_gets_one_click_unsubscribe() -> None:
    _, mail = build(options={"unsubscribe_url": "https://shop.example/u/abc"})
    assert mail["List-Unsubscribe"] == "<https://shop.example/u/abc>"  # type: ignore[index]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"  # type: ignore[index]
    _, mail = build(unsubscribe="support+unsubscribe@shop.example",
                    options={"unsubscribe_url": "https://shop.example/u/abc"})
    assert mail["List-Unsubscribe"].strip() == (  # type: ignore[index]
        "<mailto:support+unsubscribe@shop.example?subject=unsubscribe>, "
        "<https://shop.example/u/abc>")
    # Bulk mail without a link still says how to stop it: by mail.
    _, mail = build(unsubscribe="support+unsubscribe@shop.example",
                    options={"list_unsubscribe": True})
    assert mail["List-Unsubscribe"].strip() == (  # type: ignore[index]
        "<mailto:support+unsubscribe@shop.example?subject=unsubscribe>")
    assert mail["List-Unsubscribe-Post"] is None  # type: ignore[index]


def test_choices_are_numbered_lines_in_text_and_html() -> None:
    _, mail = build(choices=(Choice("talk", "Talk to a <manager>"),
                             Choice("contact", "Share my phone", request="phone"),
                             Choice("language", "Язык")), language="ru")
    plain = mail.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    assert plain.endswith("\n\n1. Talk to a <manager>\n2. Язык\n\nОтветьте цифрой.\n")
    html = mail.get_body(("html",)).get_content()  # type: ignore[attr-defined]
    assert "1. Talk to a &lt;manager&gt;<br>" in html
    # A survey's 1–5 needs no lines: its question asks for the number.
    _, mail = build(choices=tuple(Choice(f"rate:{n}", str(n)) for n in range(1, 6)))
    assert "1." not in mail.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
