"""GSM-7 or UCS-2, and the segments a text costs (pure)."""

from __future__ import annotations

import pytest

from crm.sms_encoding import Encoding, is_gsm7, non_gsm_characters, segment


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), [
    ("", Encoding.GSM7, 0, 1),
    ("Hello!", Encoding.GSM7, 6, 1),
    ("a" * 160, Encoding.GSM7, 160, 1),
    ("a" * 161, Encoding.GSM7, 161, 2),
    ("a" * 306, Encoding.GSM7, 306, 2),
    ("a" * 307, Encoding.GSM7, 307, 3),
    # The extension table costs two septets a character.
    ("{}[]~|^\\€", Encoding.GSM7, 18, 1),
    ("€" * 80, Encoding.GSM7, 160, 1),
    ("€" * 81, Encoding.GSM7, 162, 2),
    # An escape pair never straddles two parts: 306 septets, yet three parts.
    ("a" * 152 + "€" + "a" * 152, Encoding.GSM7, 306, 3),
    ("Ça coûte 5 £, Ωmega", Encoding.UCS2, 19, 1),  # û is not in GSM-7
    ("Ça va? 5£ à Δ", Encoding.GSM7, 13, 1),
    ("Привет", Encoding.UCS2, 6, 1),
    ("Ж" * 70, Encoding.UCS2, 70, 1),
    ("Ж" * 71, Encoding.UCS2, 71, 2),
    ("Ж" * 134, Encoding.UCS2, 134, 2),
    ("Ж" * 135, Encoding.UCS2, 135, 3),
    # One non-GSM character turns the whole message into UCS-2.
    ("a" * 159 + "ж", Encoding.UCS2, 160, 3),
    # Emoji are surrogate pairs: two UTF-16 units, never split.
    ("😀" * 35, Encoding.UCS2, 70, 1),
    ("😀" * 36, Encoding.UCS2, 72, 2),
    ("a" + "😀" * 67, Encoding.UCS2, 135, 3),
])
def test_segments(text: str, encoding: Encoding, units: int, segments: int) -> None:
    seg = segment(text)
    assert (seg.encoding, seg.units, seg.segments) == (encoding, units, segments)


def test_lowercase_c_cedilla_is_not_gsm_but_capital_is() -> None:
    assert is_gsm7("Ç") and not is_gsm7("ç")


def test_non_gsm_characters_are_named_once_in_order() -> None:
    assert non_gsm_characters("aбвa б😀") == ["б", "в", "😀"]


def test_remaining_room() -> None:
    assert segment("a" * 150).remaining == 10
    assert segment("a" * 200).remaining == 106
