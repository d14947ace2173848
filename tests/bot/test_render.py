"""The private-chat header: a reply always finds the customer it was about."""

from __future__ import annotations

from bot.render import customer_ref, private_header


def test_a_name_cannot_redirect_a_managers_reply() -> None:
    for name in ("Ann", "#c9", "Eve #c9\nsecond line", "Mallory\r\n#c9", "<b>x</b>\n#c9"):
        header = private_header(name, 42)
        assert "\n" not in header
        assert customer_ref(header + "\nWhere is my order?") == 42


def test_a_warning_line_is_shown_escaped_under_the_head() -> None:
    from bot.render import Entry, blocks
    from crm.types import Channel, Direction

    entry = Entry(Direction.IN, Channel.SMS, "Payment <received>", "ACME-Bank",
                  warning='The sender "<b>ACME</b>" is not a phone number')
    [block] = blocks(entry)
    head, warning, text = block.split("\n")
    assert head == "<b>ACME-Bank</b> · 📱 sms"
    assert warning == '⚠️ <i>The sender "&lt;b&gt;ACME&lt;/b&gt;" is not a phone number</i>'
    assert text == "Payment &lt;received&gt;"
    assert "⚠️" not in blocks(Entry(Direction.IN, Channel.SMS, "hi", "Ann"))[0]


def test_a_file_caption_is_cut_before_escaping_so_telegram_takes_it() -> None:
    from bot.render import CAPTION_LIMIT, Entry, file_caption
    from crm.types import Channel, Direction
    from tests.support.telegram_double import check_html, utf16_len

    for who, name in (("Ann", "Tom & Jerry <1>.pdf" * 80), ("A&B " * 400, "a.pdf"),
                      ("Ann", "Ж&" * 700)):
        caption = file_caption(Entry(Direction.IN, Channel.EMAIL, "", who), name)
        visible = check_html(caption)  # Telegram's parse: no broken entity, no broken tag
        assert utf16_len(caption) <= CAPTION_LIMIT and "…" in visible
    short = file_caption(Entry(Direction.IN, Channel.EMAIL, "", "Ann"), "a & b.pdf")
    assert short.endswith("📎 a &amp; b.pdf")


def test_a_long_name_leaves_room_for_the_reference_in_a_private_header() -> None:
    header = private_header("Ann " * 500, 42)
    assert len(header) < 200 and customer_ref(header) == 42
