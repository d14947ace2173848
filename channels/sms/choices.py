"""A message's choices as SMS text: numbered lines the customer answers with a number. Pure.

The list is added only if the whole still fits the segment cap ([sms] max_segments); otherwise
the text goes alone (every SMS answer says in words what the keywords are). Choices that ask
for what only another channel can give (Telegram's share-my-number button) are left out, and a
list whose labels are just their numbers (the survey's 1–5) needs no lines: the text asks for
the number already.
"""

from __future__ import annotations

from collections.abc import Sequence

from crm.i18n import t
from crm.sms_encoding import segment
from crm.types import Choice


def with_choices(text: str, choices: Sequence[Choice], language: str | None,
                 max_segments: int) -> tuple[str, bool]:
    """The text to send, and whether the customer sees the numbers (so that a bare number
    they send back may be read as one of them)."""
    shown = [c for c in choices if c.request is None]
    if not shown:
        return text, False
    if all(c.label == str(i) for i, c in enumerate(shown, 1)):
        return text, True
    lines = "\n".join(f"{i} - {c.label}" for i, c in enumerate(shown, 1))
    full = f"{text}\n{lines}\n{t('reply_with_number', language)}"
    return (full, True) if segment(full).segments <= max_segments else (text, False)
