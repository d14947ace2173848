"""Addresses normalised so that one person is one customer: emails, E.164 phones, Telegram ids.

SMS senders that are no phone number (short codes, alphanumeric sender ids) are kept as they came:
`normalize_address` is what arrived, as stored; `normalize_typed_address` is stricter, for an
address someone gives to link.
"""

from __future__ import annotations

import re
import unicodedata
from email.utils import parseaddr

import idna
import phonenumbers

from crm.errors import InvalidAddress
from crm.i18n import Phrase
from crm.types import Channel

_LOCAL_PART = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE
_PHONE_CHARS = re.compile(r"[+\d\s().\-/]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_ADDRESS = 320  # Identity.address


def normalize_email(raw: str) -> str:
    """`"Ann" <Ann+Shop@Example.COM>` -> `ann+shop@example.com`.

    The whole address is lower-cased (mainstream providers treat it case-insensitively, and two
    customers for one mailbox is the worse error); plus-tags are kept, since `ann+shop` may be a
    different person's alias on some servers and stripping it would merge them.

    UTF-8 addresses (RFC 6532): the local part in NFC (RFC 6532 3.1), so a decomposed `é` is
    the same customer; a non-ASCII domain as its punycode by IDNA 2008 with UTS #46 mapping, as
    mail servers and browsers resolve it (`straße.de` is `xn--strae-oqa.de`, not the IDNA 2003
    `strasse.de`, which is someone else's domain).
    """
    text = unicodedata.normalize("NFC", raw.strip())
    _, addr = parseaddr(text)
    addr = addr.strip()
    if addr and addr not in text:  # parseaddr "repaired" it (e.g. dropped a space): refuse
        raise InvalidAddress(f"{raw!r} is not an email address (unexpected characters)")
    if addr.count("@") != 1:
        raise InvalidAddress(f"{raw!r} is not an email address (expected name@domain)")
    local, domain = addr.rsplit("@", 1)
    if not local or len(local) > 64 or not _LOCAL_PART.match(local) or ".." in local:
        raise InvalidAddress(f"{raw!r} is not an email address (bad part before @)")
    try:
        ascii_domain = _ascii_domain(domain.rstrip("."))
    except UnicodeError:  # idna.IDNAError is one
        raise InvalidAddress(f"{raw!r} is not an email address (bad domain)") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise InvalidAddress(f"{raw!r} is not an email address (bad domain {domain!r})")
    return f"{unicodedata.normalize('NFC', local.lower())}@{ascii_domain}"


def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        return domain.lower()  # checked label by label by the caller, punycode ones included
    return idna.encode(domain, uts46=True, transitional=False).decode("ascii")


def normalize_phone(raw: str, default_region: str = "US") -> str:
    """Any common way of writing a phone number -> E.164 (`+15551234567`), or InvalidAddress.

    Any number of a possible length for its country counts, valid in libphonenumber's metadata
    or not: new number ranges reach its tables late, and a customer's real number must not be
    refused (or split from the same customer's other identities) until they do.
    """
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if not re.search(r"\d", text):
        raise InvalidAddress(f"{raw!r} is not a phone number (no digits)")
    try:
        number = phonenumbers.parse(text, default_region.upper())
    except phonenumbers.NumberParseException as e:
        raise InvalidAddress(f"{raw!r} is not a phone number ({e._msg})") from None
    # IS_POSSIBLE_LOCAL_ONLY (7 digits in the US) is no number to store: its area code is unknown.
    if phonenumbers.is_possible_number_with_reason(number) != _POSSIBLE:
        raise InvalidAddress(f"{raw!r} is not a phone number (wrong number of digits)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_sms_sender(raw: str, default_region: str = "US") -> str:
    """The sender of an inbound SMS as we store it; InvalidAddress only when there is none.

    A number of possible length becomes E.164 (`normalize_phone`). Anything else, a short code
    (`72345`), an alphanumeric sender id (`ACME-Bank`) or garbage, is kept as it came, trimmed,
    without control characters: every inbound message is kept, and `reply_warning` tells the
    managers that a reply may not reach it. Idempotent, as the adapter and the core both call it.
    """
    text = " ".join(_CONTROL.sub(" ", raw).split())[:MAX_ADDRESS]
    if not text:
        raise InvalidAddress("no sender: an SMS needs the number or name it came from")
    if _PHONE_CHARS.fullmatch(text):  # letters are a sender id, never a (vanity) number
        try:
            return normalize_phone(text, default_region)
        except InvalidAddress:
            pass
    return text


def reply_warning(channel: Channel, address: str) -> Phrase | None:
    """What managers should know before answering this sender (in their language), or None.

    An SMS sender kept raw by `normalize_sms_sender` is no E.164 number: gateways refuse to send
    to alphanumeric ids, and short codes take replies only where the operator routes them.
    """
    if channel is not Channel.SMS:
        return None
    try:
        if normalize_phone(address) == address:  # E.164 as stored: a number
            return None
    except InvalidAddress:
        pass
    return Phrase("sms_sender_warning", address=address)


def normalize_telegram(raw: str | int) -> str:
    text = str(raw).strip()
    if not re.fullmatch(r"-?\d{1,20}", text):
        raise InvalidAddress(f"{raw!r} is not a Telegram chat id")
    return text


# A web chat visitor's id (channels/webchat/tokens.py makes them): letters, digits, - and _.
_VISITOR = re.compile(r"w[A-Za-z0-9_-]{15,63}")


def normalize_visitor(raw: str) -> str:
    text = raw.strip()
    if not _VISITOR.fullmatch(text):
        raise InvalidAddress(f"{raw[:80]!r} is not a web chat visitor id")
    return text


def normalize_address(channel: Channel, raw: str, default_region: str = "US") -> str:
    """An address as stored, from what arrived: the key of an identity (ingest, look-ups)."""
    if channel is Channel.EMAIL:
        return normalize_email(raw)
    if channel is Channel.SMS:
        return normalize_sms_sender(raw, default_region)
    if channel is Channel.TELEGRAM:
        return normalize_telegram(raw)
    if channel is Channel.WEBCHAT:
        return normalize_visitor(raw)
    return raw.strip()


def normalize_typed_address(channel: Channel, raw: str, default_region: str = "US") -> str:
    """An address someone gives to link to a customer: for SMS it must be a phone number (a
    sender id or short code can only be learnt from a message it sent)."""
    if channel is Channel.SMS:
        return normalize_phone(raw, default_region)
    return normalize_address(channel, raw, default_region)
