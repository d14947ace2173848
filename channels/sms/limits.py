"""What an SMS may be: text within the configured number of segments (files go as MMS or as
links in the text: channels/sms/media.py). Pure.

`check_sendable` is called before a message is queued (the SMS channel hooks it into the unit of
work of `Conversations.send`, so the manager who tried gets `SendRejected` with this sentence),
and again by the senders as a safety net for rows queued some other way.
"""

from __future__ import annotations

from collections.abc import Sequence

from crm.errors import SendRejected
from crm.sms_encoding import (
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    Encoding,
    Segmentation,
    non_gsm_characters,
    segment,
)


def max_units(encoding: Encoding, max_segments: int) -> int:
    """The longest text, in units, that fits `max_segments` segments in `encoding`."""
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding is Encoding.GSM7 \
        else (UCS2_SINGLE, UCS2_PART)
    return single if max_segments == 1 else part * max_segments


def check_sendable(text: str, max_segments: int, *, media: Sequence[str] = ()) -> Segmentation:
    """The segmentation of `text` (the text as sent, file links included), or SendRejected
    saying what to change. An MMS (`media`) may have no text."""
    if media and not text.strip():
        return segment(" ")
    if not text.strip():
        raise SendRejected("an SMS needs some text")
    seg = segment(text)
    if seg.segments <= max_segments:
        return seg
    limit = max_units(seg.encoding, max_segments)
    parts = f"{max_segments} segment{'' if max_segments == 1 else 's'}"
    if seg.encoding is Encoding.UCS2:
        shown = "".join(non_gsm_characters(text)[:5])
        how = (f"it contains characters outside the GSM alphabet ({shown}), so it goes as "
               f"UCS-2 with at most {limit} characters in {parts}")
    else:
        how = f"at most {limit} characters fit in {parts}"
    over = seg.units - limit
    raise SendRejected(
        f"This SMS is too long: it would take {seg.segments} segments and the limit is "
        f"{max_segments} ([sms] max_segments); {how}. Shorten it by about "
        f"{over} character{'' if over == 1 else 's'}.")
