"""The private-chat header: a reply always finds the customer it was about."""

from __future__ import annotations

from bot.render import customer_ref, private_header


def test_a_name_cannot_redirect_a_managers_reply() -> None:
    for name in ("Ann", "#c9", "Eve #c9\nsecond line", "Mallory\r\n#c9", "<b>x</b>\n#c9"):
        header = private_header(name, 42)
        assert "\n" not in header
        assert customer_ref(header + "\nWhere is my order?") == 42
