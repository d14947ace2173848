"""Address normalisation: one person, one identity per channel."""

from __future__ import annotations

import pytest

from crm.errors import InvalidAddress
from crm.identity import normalize_email, normalize_phone, normalize_telegram


@pytest.mark.parametrize(("raw", "expected"), [
    ("ann@example.com", "ann@example.com"),
    ("Ann@Example.COM", "ann@example.com"),
    ('"Ann Smith" <Ann.Smith@Example.com>', "ann.smith@example.com"),
    ("ann+shop@example.com", "ann+shop@example.com"),  # plus-tags kept: may be another person
    ("  ann@example.com.  ", "ann@example.com"),
    ("иван@пример.рф", "иван@xn--e1afmkfd.xn--p1ai"),
])
def test_emails(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


# RFC 6532: UTF-8 in the address itself. One rule: the local part lower-cased in Unicode (NFC),
# the domain as its ASCII (punycode) form by IDNA 2008 / UTS #46, as mail servers and browsers
# resolve it; so every way of writing one mailbox gives one identity.
@pytest.mark.parametrize(("raw", "expected"), [
    ("José <José@Example.com>", "josé@example.com"),
    ("jose\u0301@example.com", "josé@example.com"),  # decomposed (NFD), as some clients send
    ("Иван@Пример.РФ", "иван@xn--e1afmkfd.xn--p1ai"),
    ("иван@xn--e1afmkfd.xn--p1ai", "иван@xn--e1afmkfd.xn--p1ai"),
    # IDNA 2003 (Python's "idna" codec) maps ß to ss: another domain, someone else's mailbox.
    ("müller@straße.de", "müller@xn--strae-oqa.de"),
    ("δοκιμή@παράδειγμα.ελ", "δοκιμή@xn--hxajbheg2az3al.xn--qxam"),
    ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"),
    ("🦊fuchs@example.com", "🦊fuchs@example.com"),  # outside the BMP
])
def test_utf8_addresses(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "ann", "ann@", "@example.com", "a@@b.com", "ann@localhost",
                                 "a..b@example.com", "ann@exa mple.com"])
def test_bad_emails_say_why(raw: str) -> None:
    with pytest.raises(InvalidAddress, match="not an email address"):
        normalize_email(raw)


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("+1 202-555-0143", "US", "+12025550143"),
    ("(202) 555-0143", "US", "+12025550143"),
    ("202.555.0143", "US", "+12025550143"),
    ("0012025550143", "DE", "+12025550143"),
    ("8 (912) 345-67-89", "RU", "+79123456789"),
    ("+7 912 345 67 89", "US", "+79123456789"),
    ("030 1234567", "DE", "+49301234567"),
    ("+44 20 7946 0958", "US", "+442079460958"),
])
def test_phones_to_e164(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    ("hello", "no digits"),
    ("12", "not a phone number"),
    ("+1 202 555", "wrong number of digits"),
    ("+1 999 555 0143", "not a valid phone number"),
])
def test_invalid_phones_are_rejected_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        normalize_phone(raw, "US")


def test_telegram_ids() -> None:
    assert normalize_telegram(" 12345 ") == "12345"
    assert normalize_telegram(-1001234) == "-1001234"
    with pytest.raises(InvalidAddress):
        normalize_telegram("@someone")
