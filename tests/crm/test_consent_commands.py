"""Parsing `/consent` (crm/consent_commands.py): pure."""

from __future__ import annotations

import pytest

from crm.consent_commands import ConsentOrder, parse
from crm.team_commands import UsageError
from crm.types import Channel, ConsentKind


def test_what_a_manager_can_write() -> None:
    assert parse("") is None and parse("   ") is None
    assert parse("marketing off sms") == ConsentOrder(ConsentKind.MARKETING, False, Channel.SMS)
    assert parse("Updates ON") == ConsentOrder(ConsentKind.NOTIFICATIONS, True, None)
    assert parse("news no tg") == ConsentOrder(ConsentKind.MARKETING, False, Channel.TELEGRAM)
    assert parse("уведомления вкл mail") == ConsentOrder(ConsentKind.NOTIFICATIONS, True,
                                                        Channel.EMAIL)
    assert parse("рассылки выкл везде") == ConsentOrder(ConsentKind.MARKETING, False, None)


@pytest.mark.parametrize(("args", "says"), [
    ("marketing", "Usage: /consent"), ("spam off", "Usage: /consent"),
    ("marketing maybe", "Usage: /consent"), ("marketing off sms now", "Usage: /consent"),
    ("marketing off fax", "No channel fax: use one of telegram, email, sms"),
])
def test_a_mistake_says_how_to_write_it(args: str, says: str) -> None:
    with pytest.raises(UsageError) as e:
        parse(args)
    assert e.value.phrase.render("en").startswith(says)
    assert e.value.phrase.render("ru") != e.value.phrase.render("en")
