"""A message's choices as SMS lines, within the segment cap (pure)."""

from __future__ import annotations

from channels.sms.choices import with_choices
from crm.sms_encoding import segment
from crm.types import Choice

MENU = (Choice("talk", "Talk to a manager"), Choice("contact", "Share my phone", request="phone"),
        Choice("language", "Language"))


def test_numbered_lines_leave_out_what_sms_cannot_offer() -> None:
    assert with_choices("Acme: how can we help?", MENU, "en", 4) == (
        "Acme: how can we help?\n1 - Talk to a manager\n2 - Language\nReply with a number.",
        True)


def test_the_list_goes_only_if_it_fits_the_cap() -> None:
    text = "x" * 150  # one segment alone; with the list, two
    assert with_choices(text, MENU, "en", 1) == (text, False)  # so numbers mean nothing then
    assert segment(with_choices(text, MENU, "en", 2)[0]).segments == 2


def test_in_the_customer_s_language_and_not_for_a_survey() -> None:
    assert with_choices("Чем помочь?", MENU, "ru", 4)[0].endswith("Ответьте цифрой.")
    survey = tuple(Choice(f"rate:{n}", str(n)) for n in range(1, 6))
    assert with_choices("Rate us 1-5", survey, "en", 4) == ("Rate us 1-5", True)
    assert with_choices("No choices", (), "en", 4) == ("No choices", False)
