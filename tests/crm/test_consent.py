"""The consent service: per channel or every channel, the newer word wins, each change audited once."""

from __future__ import annotations

import pytest

from crm.config import Settings
from crm.consent import EVERY_CHANNEL, Consents, describe, effects
from crm.errors import ConfigError
from crm.events import ConsentChanged
from crm.models import AuditLog
from crm.services import Core
from crm.types import Channel, ConsentKind, ConsentSource, InboundMessage
from tests.conftest import make_settings
from tests.support.clock import TravelClock

MARKETING, NOTIFICATIONS = ConsentKind.MARKETING, ConsentKind.NOTIFICATIONS


async def _customer(core: Core) -> int:
    await core.timeline.ingest(InboundMessage(Channel.SMS, "s-1", "+12025550101", text="hi"))
    result = await core.timeline.ingest(
        InboundMessage(Channel.TELEGRAM, "t-1", "42", text="hi"))
    await core.customers.link_identity(result.customer_id, Channel.SMS, "+12025550101")
    return (await core.customers.get(result.customer_id)).id


@pytest.fixture
def clocked(settings: Settings) -> tuple[Core, TravelClock]:
    clock = TravelClock()
    return Core.build(settings, clock), clock


async def test_a_stop_on_one_channel_leaves_the_others(clocked: tuple[Core, TravelClock]) -> None:
    core, _clock = clocked
    cid = await _customer(core)
    changed = await core.consent.change(cid, [MARKETING, NOTIFICATIONS], False,
                                        channel=Channel.SMS, source=ConsentSource.KEYWORD,
                                        actor="customer")
    assert [(c.kind, c.channel, c.granted) for c in changed] == [
        (MARKETING, "sms", False), (NOTIFICATIONS, "sms", False)]
    assert not await core.consent.allows(cid, MARKETING, Channel.SMS)
    assert not await core.consent.allows(cid, NOTIFICATIONS, Channel.SMS)
    assert await core.consent.allows(cid, MARKETING, Channel.TELEGRAM)
    assert await core.consent.allows(cid, MARKETING, Channel.EMAIL)


async def test_every_channel_then_start_on_one(clocked: tuple[Core, TravelClock]) -> None:
    core, clock = clocked
    cid = await _customer(core)
    await core.consent.change(cid, MARKETING, False, channel=None,
                              source=ConsentSource.COMMAND, actor="customer")
    for channel in (Channel.SMS, Channel.TELEGRAM, Channel.EMAIL):
        assert not await core.consent.allows(cid, MARKETING, channel)
    clock.advance(minutes=1)
    await core.consent.change(cid, MARKETING, True, channel=Channel.TELEGRAM,
                              source=ConsentSource.COMMAND, actor="customer")
    assert await core.consent.allows(cid, MARKETING, Channel.TELEGRAM)
    # START in Telegram does not resume SMS or email.
    assert not await core.consent.allows(cid, MARKETING, Channel.SMS)
    assert not await core.consent.allows(cid, MARKETING, Channel.EMAIL)
    states = {(s.channel, s.granted) for s in await core.consent.states(cid)
              if s.kind is MARKETING}
    assert states == {("telegram", True), ("sms", False), (EVERY_CHANNEL, False)}


def test_the_channels_rules_are_what_a_word_changes() -> None:
    sms, telegram = Channel.SMS, Channel.TELEGRAM
    assert effects(MARKETING, sms) == [(MARKETING, sms), (NOTIFICATIONS, sms)]
    assert effects(MARKETING, sms, everywhere=True) == [(MARKETING, None), (NOTIFICATIONS, sms)]
    assert effects(MARKETING, telegram) == [(MARKETING, telegram)]
    assert effects(MARKETING, telegram, everywhere=True) == [(MARKETING, None)]
    assert effects(MARKETING, None) == [(MARKETING, None)]  # the API or a manager, no channel
    assert effects(NOTIFICATIONS, sms) == [(NOTIFICATIONS, sms)]  # UPDATES OFF: its own word


@pytest.mark.parametrize("source", [ConsentSource.KEYWORD, ConsentSource.API,
                                    ConsentSource.MANAGER, ConsentSource.CLI,
                                    ConsentSource.IMPORT])
async def test_an_sms_stop_is_every_message_by_sms_whoever_passes_it_on(
        clocked: tuple[Core, TravelClock], source: ConsentSource) -> None:
    core, clock = clocked
    cid = await _customer(core)
    await core.consent.stop(cid, Channel.SMS, source=source, actor="someone")
    assert not await core.consent.allows(cid, MARKETING, Channel.SMS)
    assert not await core.consent.allows(cid, NOTIFICATIONS, Channel.SMS)
    assert await core.consent.allows(cid, MARKETING, Channel.TELEGRAM)
    assert await core.consent.refusal(cid, Channel.SMS, "system") is not None
    clock.advance(minutes=1)
    await core.consent.start(cid, Channel.SMS, source=source, actor="someone")
    assert await core.consent.allows(cid, MARKETING, Channel.SMS)
    assert await core.consent.allows(cid, NOTIFICATIONS, Channel.SMS)
    clock.advance(minutes=1)
    changed = await core.consent.stop(cid, Channel.SMS, everywhere=True, source=source,
                                      actor="someone")  # STOPALL by SMS
    assert [(c.kind, c.channel) for c in changed] == [(MARKETING, EVERY_CHANNEL),
                                                      (NOTIFICATIONS, "sms")]
    assert await core.consent.allows(cid, NOTIFICATIONS, Channel.TELEGRAM)
    clock.advance(minutes=1)
    await core.consent.start(cid, Channel.TELEGRAM, kind=NOTIFICATIONS, source=source,
                             actor="someone")  # order updates on in Telegram: nothing else
    assert not await core.consent.allows(cid, MARKETING, Channel.TELEGRAM)
    assert not await core.consent.allows(cid, NOTIFICATIONS, Channel.SMS)


async def test_each_change_is_audited_once_and_a_repeat_changes_nothing(
        clocked: tuple[Core, TravelClock]) -> None:
    core, _clock = clocked
    cid = await _customer(core)
    seen: list[ConsentChanged] = []

    async def on(event: ConsentChanged) -> None:
        seen.append(event)

    core.bus.subscribe(ConsentChanged, on)
    for _ in range(3):
        await core.consent.change(cid, MARKETING, False, channel=Channel.EMAIL,
                                  source=ConsentSource.LINK, actor="customer")
    # Stopping every channel when email is already off still changes SMS and Telegram.
    await core.consent.change(cid, MARKETING, False, channel=None,
                              source=ConsentSource.API, actor="api:shop")
    await core.consent.change(cid, MARKETING, False, channel=Channel.SMS,
                              source=ConsentSource.KEYWORD, actor="customer")
    audit = await AuditLog.filter(customer_id=cid, action="consent.changed").order_by("id")
    assert [(a.detail["channel"], a.detail["source"]) for a in audit] == [
        ("email", "link"), ("*", "api")]
    assert [(e.channel, e.actor) for e in seen] == [("email", "customer"), ("*", "api:shop")]


async def test_opt_in_default_and_describe(db: str) -> None:
    core = Core.build(make_settings(db, consent={"marketing_default": "denied"}))
    cid = await _customer(core)
    assert not await core.consent.allows(cid, MARKETING, Channel.TELEGRAM)
    assert await core.consent.allows(cid, NOTIFICATIONS, Channel.TELEGRAM)
    await core.consent.change(cid, MARKETING, True, channel=Channel.TELEGRAM,
                              source=ConsentSource.COMMAND, actor="customer")
    assert await core.consent.allows(cid, MARKETING, Channel.TELEGRAM)
    lines = describe(await core.consent.states(cid))
    assert lines[0].startswith("marketing: telegram yes (command, ")
    assert "sms no (default)" in lines[0] and "other channels no (default)" in lines[0]
    assert lines[1] == ("notifications: telegram yes (default), sms yes (default), "
                        "other channels yes (default)")
    assert isinstance(core.consent, Consents)


def test_config_refuses_an_unknown_default() -> None:
    with pytest.raises(ConfigError, match=r"\[consent\] marketing_default"):
        make_settings("sqlite://:memory:", consent={"marketing_default": "maybe"})
