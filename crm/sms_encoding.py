"""GSM-7 or UCS-2, and how many SMS segments a text costs (3GPP TS 23.038 / 23.040).

Pure: no I/O; the SMS adapter sends by it and campaign previews show it. A text that fits the GSM
7-bit alphabet (with its extension table, whose characters take two septets each) goes as GSM-7:
160 septets in one SMS, 153 per part when concatenated (the UDH takes the rest). Anything else goes
as UCS-2: 70 UTF-16 code units in one SMS, 67 per part. An escape pair or a surrogate pair is never
split across two parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The GSM 03.38 default alphabet, in code order; 0x1B (ESC) is not a character of its own.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a text goes over SMS: its encoding, its length in units, and the parts it takes."""

    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # capacity of one part at this segment count

    @property
    def remaining(self) -> int:
        """Units still free in the last part."""
        return self.segments * self.per_segment - self.units if self.segments > 1 \
            else self.per_segment - self.units


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _unit_sizes(text: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def _pack(sizes: list[int], capacity: int) -> int:
    """Parts needed when an indivisible unit (escape or surrogate pair) never straddles two."""
    parts, used = 1, 0
    for size in sizes:
        if used + size > capacity:
            parts += 1
            used = 0
        used += size
    return parts


def segment(text: str) -> Segmentation:
    """The encoding and the number of segments `text` costs as one SMS."""
    encoding = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding is Encoding.GSM7 \
        else (UCS2_SINGLE, UCS2_PART)
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    if units <= single:
        return Segmentation(encoding, units, 1, single)
    return Segmentation(encoding, units, _pack(sizes, part), part)


def non_gsm_characters(text: str) -> list[str]:
    """The characters that force UCS-2, in order of appearance, once each (for error messages)."""
    seen: dict[str, None] = {}
    for c in text:
        if c not in GSM7_BASIC and c not in GSM7_EXTENSION:
            seen.setdefault(c)
    return list(seen)
