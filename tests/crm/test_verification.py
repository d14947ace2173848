"""Codes that prove an address is the customer's before it is linked (crm/verification.py):
the channel must be there to send them, only an HMAC of a code is kept, and checks follow the
customer (merge, export, forget)."""

from __future__ import annotations

import pytest

from crm.errors import InvalidAddress
from crm.models import AddressCheck, Outbox
from crm.services import Core
from crm.types import Channel, InboundMessage
from crm.verification import CheckRefused, CheckRules, parse_contact


@pytest.mark.parametrize(("raw", "expected"), [
    (" Dana@Example.COM ", (Channel.EMAIL, "dana@example.com")),
    ("+44 20 7946 0958", (Channel.SMS, "+442079460958")),
    ("(202) 555-0143", (Channel.SMS, "+12025550143")),
])
def test_an_address_as_typed(raw: str, expected: tuple[Channel, str]) -> None:
    assert parse_contact(raw, "US") == expected


@pytest.mark.parametrize("raw", ["", "hello", "@", "x" * 400, "12"])
def test_what_is_no_address(raw: str) -> None:
    with pytest.raises(InvalidAddress):
        parse_contact(raw, "US")


async def _customer(core: Core) -> int:
    result = await core.timeline.ingest(InboundMessage(
        Channel.WEBCHAT, "w-1", "wAbCdEfGhIjKlMnOpQrStUv", text="hi"))
    return result.customer_id


async def test_a_channel_that_is_off_sends_no_code(core: Core) -> None:
    customer_id = await _customer(core)
    with pytest.raises(CheckRefused) as info:
        await core.checks.request(customer_id, "dana@example.com", available={Channel.SMS},
                                  language="en", rules=CheckRules(), default_region="US")
    assert info.value.reason == "unavailable"
    assert await Outbox.all().count() == 0


async def test_only_a_mac_of_the_code_is_kept_and_checks_follow_the_customer(
        core: Core) -> None:
    customer_id = await _customer(core)
    check = await core.checks.request(customer_id, "dana@example.com",
                                      available={Channel.EMAIL}, language="ru",
                                      rules=CheckRules(), default_region="US")
    row = await Outbox.get(channel=Channel.EMAIL, address="dana@example.com")
    code = str(row.payload["text"])[:6]
    assert code.isdigit() and "ваш код" in str(row.payload["text"])
    assert code not in check.code_hash and len(check.code_hash) == 64
    exported = await core.customers.export(customer_id)
    assert exported["address_checks"][0]["address"] == "dana@example.com"
    await core.customers.forget(customer_id)
    assert await AddressCheck.all().count() == 0
