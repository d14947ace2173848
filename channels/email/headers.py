"""Reading mail headers that may be broken: encoded words, raw 8-bit bytes, wrong charsets.

The stdlib's structured headers raise or return surrogates on some real-world mail, so values are
read raw (`Message.raw_items`) and decoded here, never trusting a single declaration.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from crm.config import DEFAULT_FALLBACK_CHARSETS

# Tried, in order, after the charsets a mail declares and UTF-8 ([email] fallback_charsets).
DEFAULT_FALLBACKS: tuple[str, ...] = DEFAULT_FALLBACK_CHARSETS
# The order for bytes of a mail that declares nothing.
DEFAULT_CHARSETS = ("utf-8", *DEFAULT_FALLBACKS)
# Single-byte legacy charsets (Python's codec names): text in them is almost never valid UTF-8
# with non-ASCII characters, so such bytes under such a declaration are UTF-8 mislabelled.
_LEGACY = re.compile(r"^(ascii|iso8859-\d+|cp12\d\d|cp8\d\d|cp437|koi8-\w+|mac-\w+|"
                     r"kz1048|ptcp154|tis-620)$")
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\t\r\n"
_ID = re.compile(r"<([^<>\s]+)>")
MAX_ID_LENGTH = 250


@functools.lru_cache(maxsize=256)
def codec_name(charset: str | None) -> str | None:
    """Python's name for a charset a mail declares (`"ISO-8859-1"` -> `iso8859-1`), or None."""
    name = (charset or "").strip().strip('"').strip("'").strip()
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


@functools.lru_cache(maxsize=256)
def ascii_compatible(codec: str) -> bool:
    """Whether the charset reads ASCII as ASCII: only such charsets can be what the 8-bit bytes
    of a header are in (not UTF-16, EBCDIC, or UTF-7, in which a '+' starts a sequence)."""
    try:
        return _PRINTABLE.decode(codec) == _PRINTABLE.decode("ascii")
    except (UnicodeDecodeError, LookupError):
        return False


def charset_order(declared: Iterable[str | None],
                  fallbacks: Sequence[str] = DEFAULT_FALLBACKS) -> tuple[str, ...]:
    """What the 8-bit bytes of one mail are read as, in order: the charsets the mail declares
    (its parts' Content-Type, in order), UTF-8, then the fallbacks. Unknown names are skipped."""
    order: dict[str, None] = {}
    for charset in declared:
        codec = codec_name(charset)
        if codec is not None and ascii_compatible(codec):
            order.setdefault(codec)
    for charset in ("utf-8", *fallbacks):
        codec = codec_name(charset)
        if codec is not None:
            order.setdefault(codec)
    return tuple(order)


def decode_bytes(data: bytes, declared: str | None = None,
                 charsets: Sequence[str] = DEFAULT_CHARSETS) -> str:
    """Text from bytes: `declared` (the part's or the encoded word's own charset) first, then
    `charsets` (see `charset_order`); never raises.

    A single-byte legacy declaration (Latin-1, windows-1251, KOI8-R…) on bytes that are valid
    UTF-8 with non-ASCII characters is almost always a wrong declaration: UTF-8 wins.
    """
    for codec in dict.fromkeys(c for c in map(codec_name, (declared, *charsets)) if c):
        if _LEGACY.match(codec) and (utf8 := _non_ascii_utf8(data)) is not None:
            return utf8
        if codec == "utf-7" and data.isascii():
            # UTF-7 is 7-bit: every ASCII-compatible fallback would "succeed" on it and show the
            # text in its encoded form ("Fr+APY-sche").
            return _utf7(data)
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # when the fallbacks are all multi-byte or none are given


def _non_ascii_utf8(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if text.isascii() else text


def _keep_utf7_sequence(error: UnicodeError) -> tuple[str, int]:
    """Python's UTF-7 codec refuses a whole text for one ill-formed sequence (a '+' the sender's
    encoder left unescaped, as in "C++" or "+43 1 234"): keep such a sequence as it is. Stray
    padding bits after a complete character are dropped (the character is already decoded)."""
    assert isinstance(error, UnicodeDecodeError)
    if "padding" in error.reason:
        return "", error.end
    return error.object[error.start:error.end].decode("latin-1"), error.end


codecs.register_error("crm-utf7-lenient", _keep_utf7_sequence)


def _utf7(data: bytes) -> str:
    return data.decode("utf-7", "crm-utf7-lenient")


def _unescape_surrogates(value: str, charsets: Sequence[str] = DEFAULT_CHARSETS) -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes; turn them back into text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"), None, charsets)


def decode_value(raw: str, charsets: Sequence[str] = DEFAULT_CHARSETS) -> str:
    """One header value: encoded words (RFC 2047) and 8-bit bytes decoded, folding removed."""
    raw = _unescape_surrogates(str(raw), charsets)
    try:
        parts = decode_header(raw)
    except Exception:  # a malformed encoded word: show the raw text rather than nothing
        return re.sub(r"\s+", " ", raw).strip()
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            # Text between encoded words comes back as raw-unicode-escape bytes of what was
            # already decoded above; encoded words as bytes in their own charset.
            out.append(chunk.decode("raw-unicode-escape") if charset is None
                       else decode_bytes(chunk, charset, charsets))
        else:
            out.append(chunk)
    return re.sub(r"\s+", " ", "".join(out)).strip()


def raw_header(msg: Message, name: str,
               charsets: Sequence[str] = DEFAULT_CHARSETS) -> str | None:
    """The first raw value of a header, undecoded (for ids and addresses)."""
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            return _unescape_surrogates(str(value), charsets)
    return None


def header(msg: Message, name: str, charsets: Sequence[str] = DEFAULT_CHARSETS) -> str | None:
    value = raw_header(msg, name, charsets)
    return None if value is None else decode_value(value, charsets)


def all_headers(msg: Message, name: str,
                charsets: Sequence[str] = DEFAULT_CHARSETS) -> list[str]:
    lname = name.lower()
    return [decode_value(str(v), charsets) for k, v in msg.raw_items() if k.lower() == lname]


def addresses(msg: Message, name: str,
              charsets: Sequence[str] = DEFAULT_CHARSETS) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header; unparseable entries are dropped."""
    values = [str(v) for k, v in msg.raw_items() if k.lower() == name.lower()]
    if not values:
        return []
    decoded = [_decode_names(_unescape_surrogates(v, charsets), charsets) for v in values]
    pairs = [_bare_address(n, a) for n, a in getaddresses(decoded)]
    return [(n, a) for n, a in pairs if a and "@" in a]


def _bare_address(name: str, address: str) -> tuple[str, str]:
    """`Big Bug bb@bug.com` (no angle brackets) reaches us as one address with spaces in it:
    the one word with an @ is the address, the other words are the name."""
    words = address.split()
    at = [w for w in words if "@" in w]
    if len(words) < 2 or len(at) != 1:
        return name, address
    return name or " ".join(w for w in words if w is not at[0]), at[0]


def _decode_names(value: str, charsets: Sequence[str] = DEFAULT_CHARSETS) -> str:
    # Decode encoded words in display names but keep the <address> syntax intact.
    if "=?" not in value:
        return value
    return re.sub(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=(\s+(?==\?))?",
                  lambda m: '"' + decode_value(m.group(0).strip(), charsets).replace('"', "'")
                  + '"', value)


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
