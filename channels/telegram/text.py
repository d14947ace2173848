"""Texts for Telegram: escaping customer text for HTML, and splitting past 4096 characters."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

MAX_TEXT = 4096  # Telegram's limit, counted in UTF-16 code units after entity parsing


def escape(text: str) -> str:
    """Customer text made safe for parse_mode=HTML."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT,
               measure: Callable[[str], int] = utf16_len) -> list[str]:
    """Cut `text` into pieces of at most `limit` (by `measure`), at a line break or a space
    when one is near enough, never inside a surrogate pair. Joining the pieces gives `text`
    back, except for the whitespace at the cuts."""
    if measure(text) <= limit:
        return [text]
    pieces: list[str] = []
    rest = text
    while rest:
        if measure(rest) <= limit:
            pieces.append(rest)
            break
        cut = _fit(rest, limit, measure)
        window = rest[:cut]
        for sep in ("\n\n", "\n", " "):
            at = window.rfind(sep)
            if at > cut // 2:
                cut = at
                break
        piece, rest = rest[:cut], rest[cut:]
        if piece.strip():
            pieces.append(piece.rstrip())
        rest = rest.lstrip("\n ")
    return pieces


def _fit(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """The longest prefix length of `text` whose measure is within `limit` (binary search)."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def escaped_pieces(text: str, limit: int) -> list[str]:
    """`text` split so that each piece, once escaped, fits `limit`; returned escaped."""
    return [escape(p) for p in split_text(text, limit, lambda s: utf16_len(escape(s)))]


def pack(blocks: Sequence[str], limit: int = MAX_TEXT, sep: str = "\n\n") -> list[str]:
    """Join HTML blocks (each balanced and within `limit`) into as few messages as fit."""
    out: list[str] = []
    current = ""
    for block in blocks:
        candidate = f"{current}{sep}{block}" if current else block
        if current and utf16_len(candidate) > limit:
            out.append(current)
            current = block
        else:
            current = candidate
    if current:
        out.append(current)
    return out
