"""Reading mail headers that may be broken: encoded words, raw 8-bit bytes, wrong charsets.

The stdlib's structured headers raise or return surrogates on some real-world mail, so values are
read raw (`Message.raw_items`) and decoded here, never trusting a single declaration.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

# Charsets tried, in order, for bytes whose declaration is missing or wrong.
FALLBACK_CHARSETS = ("utf-8", "cp1251", "koi8-r", "cp1252")
_LATIN = frozenset({"us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1", "windows-1252",
                    "cp1252", "iso-8859-15"})
_ID = re.compile(r"<([^<>\s]+)>")
MAX_ID_LENGTH = 250


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Text from bytes whatever the declaration says; never raises.

    A Latin-1-ish declaration on bytes that are valid UTF-8 with non-ASCII characters is almost
    always a wrong declaration (UTF-8 sequences are unlikely in Latin-1 text): UTF-8 wins.
    """
    charset = (declared or "").strip().strip('"').lower()
    if charset in _LATIN:
        try:
            text = data.decode("utf-8")
            if not text.isascii():
                return text
        except UnicodeDecodeError:
            pass
    if charset:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    for candidate in FALLBACK_CHARSETS:
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # unreachable in practice: cp1252 fails only on 5 bytes


def _unescape_surrogates(value: str) -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes; turn them back into text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"))


def decode_value(raw: str) -> str:
    """One header value: encoded words (RFC 2047) and 8-bit bytes decoded, folding removed."""
    raw = _unescape_surrogates(str(raw))
    try:
        parts = decode_header(raw)
    except Exception:  # a malformed encoded word: show the raw text rather than nothing
        return re.sub(r"\s+", " ", raw).strip()
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset))
        else:
            out.append(chunk)
    return re.sub(r"\s+", " ", "".join(out)).strip()


def raw_header(msg: Message, name: str) -> str | None:
    """The first raw value of a header, undecoded (for ids and addresses)."""
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            return _unescape_surrogates(str(value))
    return None


def header(msg: Message, name: str) -> str | None:
    value = raw_header(msg, name)
    return None if value is None else decode_value(value)


def all_headers(msg: Message, name: str) -> list[str]:
    lname = name.lower()
    return [decode_value(str(v)) for k, v in msg.raw_items() if k.lower() == lname]


def addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header; unparseable entries are dropped."""
    values = [str(v) for k, v in msg.raw_items() if k.lower() == name.lower()]
    if not values:
        return []
    decoded = [_decode_names(_unescape_surrogates(v)) for v in values]
    return [(n, a) for n, a in getaddresses(decoded) if a and "@" in a]


def _decode_names(value: str) -> str:
    # Decode encoded words in display names but keep the <address> syntax intact.
    if "=?" not in value:
        return value
    return re.sub(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=(\s+(?==\?))?",
                  lambda m: '"' + decode_value(m.group(0).strip()).replace('"', "'") + '"',
                  value)


def normalize_id(value: str) -> str:
    """A Message-ID as we store it: no angle brackets or spaces; a hash when absurdly long."""
    token = value.strip().strip("<>").strip()
    token = re.sub(r"\s+", "", token)
    if len(token) > MAX_ID_LENGTH:
        return "h." + hashlib.sha256(token.encode("utf-8", "replace")).hexdigest() + "@long-id"
    return token


def message_ids(value: str | None) -> list[str]:
    """Every id in an In-Reply-To/References value, in order; tolerant of missing brackets."""
    if not value:
        return []
    found = _ID.findall(value)
    if not found:
        found = [t for t in value.split() if "@" in t]
    seen: dict[str, None] = {}
    for token in found:
        seen.setdefault(normalize_id(token), None)
    return [t for t in seen if t]


def synthesize_id(raw: bytes) -> str:
    """A stable Message-ID for mail without one: the same bytes give the same id on refetch."""
    return f"{hashlib.sha256(raw).hexdigest()[:40]}@no-message-id.invalid"


def parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
