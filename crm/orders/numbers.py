"""Order numbers, amounts and currencies as values: pure functions, no I/O.

An order number is what customers type back to us ("ORDER A-1042" by SMS), so it must hold a
digit (bot/intents.py reads "order status" as a question for a person, "order 1042" as a
lookup) and be at most 40 letters, digits, '-', '_' or '.'. Its key ignores case: "a-1042" finds
"A-1042". Amounts are kept in the currency's minor unit (cents) as integers.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from crm.errors import CrmError

# bot/intents.py finds numbers in messages ("order A-1042") with the same pattern.
PATTERN = r"(?=[\w.-]*\d)\w[\w.-]{0,39}"
MAX_LENGTH = 40  # the column; the key too, which upper() can lengthen ("ß" -> "SS")
_NUMBER = re.compile(f"^{PATTERN}$")
# ISO 4217 currencies without cents, and those with three decimals; the rest have two.
_EXPONENT = {**dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
                              "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
             **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3)}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT = 10**15  # minor units: fits a BIGINT with room to sum


class InvalidOrder(CrmError):
    """A field of an order that cannot be stored as given; the message names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def number_key(number: str) -> str:
    """The key of an order number (what the upsert and lookups compare): case ignored."""
    return number.strip().upper()


def check_number(number: str) -> str:
    """The number as stored (trimmed), or InvalidOrder saying what an order number is."""
    text = number.strip().lstrip("#№").strip().rstrip(".")
    if not _NUMBER.match(text) or len(number_key(text)) > MAX_LENGTH:
        raise InvalidOrder("number", f"{number!r} is not an order number: up to 40 letters, "
                                     "digits, '-', '_' or '.', with at least one digit")
    return text


def check_currency(currency: str) -> str:
    code = currency.strip().upper()
    if not _CURRENCY.match(code):
        raise InvalidOrder("currency", f"{currency!r} is not a currency code such as EUR, "
                                       "USD or RUB")
    return code


def exponent(currency: str | None) -> int:
    return _EXPONENT.get(currency or "", 2)


def to_minor(amount: str | int | float, currency: str | None) -> int:
    """"1 234,50" or 1234.5 in EUR -> 123450; more decimals than the currency has is an error."""
    text = str(amount).strip().replace("\u00a0", "").replace(" ", "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")  # a decimal comma, as European spreadsheets write it
    places = exponent(currency)
    whole, dot, cents = text.partition(".")
    if whole.isdigit() and whole.isascii() and len(whole) < 13 and (not dot or (
            cents.isdigit() and cents.isascii() and len(cents) <= places)):
        # The common case, in integers: "49.90" -> 4990 (the same as the Decimal path below).
        scale = (1, 10, 100, 1000)[places]
        return int(whole) * scale + (int(cents.ljust(places, "0")) if cents else 0)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidOrder("amount", f"{amount!r} is not an amount such as 49.90") from None
    minor = value.scaleb(places)
    if not value.is_finite() or minor != minor.to_integral_value():
        raise InvalidOrder("amount", f"{amount!r} has more decimals than "
                                     f"{currency or 'the currency'} has ({places})")
    if value < 0 or minor >= MAX_AMOUNT:
        raise InvalidOrder("amount", f"{amount!r} is out of range (0 or more)")
    return int(minor)


def from_minor(minor: int | None, currency: str | None) -> str | None:
    """123450 in EUR -> "1234.50" (what the API and the pages show)."""
    if minor is None:
        return None
    places = exponent(currency)
    return str(Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places)))
