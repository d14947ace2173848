"""Address normalisation: one person, one identity per channel."""

from __future__ import annotations

import pytest

from crm.errors import InvalidAddress
from crm.identity import (
    normalize_address,
    normalize_email,
    normalize_phone,
    normalize_sms_sender,
    normalize_telegram,
    normalize_typed_address,
    reply_warning,
)
from crm.types import Channel


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
    ("555 1234", "wrong number of digits"),  # dialable locally only: no E.164 to store
])
def test_invalid_phones_are_rejected_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        normalize_phone(raw, "US")


def test_a_possible_number_is_a_phone_number_before_libphonenumber_knows_its_range() -> None:
    # Invalid in libphonenumber's metadata, yet a possible length: new ranges reach its tables
    # late, so the number a customer texts from (or shares in Telegram) may be one of these.
    assert normalize_phone("+1 555 765 4321", "US") == "+15557654321"
    assert normalize_phone("+1 999 555 0143", "US") == "+19995550143"


@pytest.mark.parametrize(("raw", "expected"), [
    ("+15557654321", "+15557654321"),  # possible, not "valid": E.164
    ("15557654321", "+15557654321"),  # Kannel's %p without the plus
    ("(202) 555-0143", "+12025550143"),
    ("0012025550143", "+12025550143"),
    ("72345", "72345"),  # a short code: kept as it came
    (" 72345 ", "72345"),
    ("5551234", "5551234"),  # local-only length: no country to make E.164 of
    ("ACME-Bank", "ACME-Bank"),  # an alphanumeric sender id
    ("  Acme Bank\t", "Acme Bank"),
    ("Bank24", "Bank24"),  # letters: never read as a (vanity) number
    ("+1 202 555", "+1 202 555"),  # too short for a number: kept raw
    ("☺ call\x00 me\n", "☺ call me"),  # garbage is kept too, without control characters
])
def test_inbound_sms_senders_are_kept(raw: str, expected: str) -> None:
    assert normalize_sms_sender(raw, "US") == expected
    assert normalize_sms_sender(expected, "US") == expected  # idempotent: adapter, then core
    assert normalize_address(Channel.SMS, raw, "US") == expected


@pytest.mark.parametrize("raw", ["", "   ", "\x00\t"])
def test_an_empty_sms_sender_is_refused(raw: str) -> None:
    with pytest.raises(InvalidAddress, match="no sender"):
        normalize_sms_sender(raw, "US")


def test_a_typed_or_shared_number_must_be_a_phone_number() -> None:
    assert normalize_typed_address(Channel.SMS, "(202) 555-0143", "US") == "+12025550143"
    assert normalize_typed_address(Channel.SMS, "+15557654321", "US") == "+15557654321"
    for raw in ("ACME-Bank", "72345"):
        with pytest.raises(InvalidAddress, match="not a phone number"):
            normalize_typed_address(Channel.SMS, raw, "US")
    assert normalize_typed_address(Channel.EMAIL, "Ann@Example.com", "US") == "ann@example.com"


def test_reply_warning_for_senders_that_are_not_phone_numbers() -> None:
    for address in ("ACME-Bank", "72345", "+1 202 555", "+72345"):
        warning = reply_warning(Channel.SMS, address)
        assert warning is not None and address in str(warning) and "reply" in str(warning)
        assert "ответ" in warning.render("ru") and address in warning.render("ru")
    assert reply_warning(Channel.SMS, "+15557654321") is None
    assert reply_warning(Channel.EMAIL, "ann@example.com") is None
    assert reply_warning(Channel.TELEGRAM, "12345") is None


def test_telegram_ids() -> None:
    assert normalize_telegram(" 12345 ") == "12345"
    assert normalize_telegram(-1001234) == "-1001234"
    with pytest.raises(InvalidAddress):
        normalize_telegram("@someone")
