"""Addresses normalised so that one person is one customer: emails, E.164 phones, Telegram ids."""

from __future__ import annotations

import re
import unicodedata
from email.utils import parseaddr

import idna
import phonenumbers

from crm.errors import InvalidAddress
from crm.types import Channel

_LOCAL_PART = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


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
    """Any common way of writing a phone number -> E.164 (`+15551234567`), or InvalidAddress."""
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if not re.search(r"\d", text):
        raise InvalidAddress(f"{raw!r} is not a phone number (no digits)")
    try:
        number = phonenumbers.parse(text, default_region.upper())
    except phonenumbers.NumberParseException as e:
        raise InvalidAddress(f"{raw!r} is not a phone number ({e._msg})") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidAddress(f"{raw!r} is not a phone number (wrong number of digits)")
    if not phonenumbers.is_valid_number(number):
        raise InvalidAddress(f"{raw!r} is not a valid phone number in any numbering plan")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_telegram(raw: str | int) -> str:
    text = str(raw).strip()
    if not re.fullmatch(r"-?\d{1,20}", text):
        raise InvalidAddress(f"{raw!r} is not a Telegram chat id")
    return text


def normalize_address(channel: Channel, raw: str, default_region: str = "US") -> str:
    if channel is Channel.EMAIL:
        return normalize_email(raw)
    if channel is Channel.SMS:
        return normalize_phone(raw, default_region)
    if channel is Channel.TELEGRAM:
        return normalize_telegram(raw)
    return raw.strip()
