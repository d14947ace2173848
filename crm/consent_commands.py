"""Consent on a manager's word: `/consent` in a customer's topic and `crm customers consent`
(the web console will call the same), through the consent service's `stop` and `start`, so
the channels' rules hold (marketing off by SMS stops every message by SMS). Each change is
audited with its source (MANAGER or CLI) and who made it.

    /consent                          what holds, per kind and channel
    /consent marketing off [channel]  news and offers off on one channel (or every channel)
    /consent updates on [channel]     order updates (notifications) on again

Kinds: marketing (news), notifications (updates, orders); on / off (yes / no); the Russian
words too. Without a channel the word is for every channel, like STOPALL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm.consent import CUSTOMER_CHANNELS, ConsentState, describe
from crm.i18n import Phrase, team
from crm.team_commands import UsageError
from crm.types import Channel, ConsentKind, ConsentSource

if TYPE_CHECKING:
    from crm.services import Core

KINDS = {"marketing": ConsentKind.MARKETING, "news": ConsentKind.MARKETING,
         "рассылки": ConsentKind.MARKETING, "реклама": ConsentKind.MARKETING,
         "notifications": ConsentKind.NOTIFICATIONS, "updates": ConsentKind.NOTIFICATIONS,
         "orders": ConsentKind.NOTIFICATIONS, "уведомления": ConsentKind.NOTIFICATIONS}
SWITCH = {"on": True, "yes": True, "вкл": True, "да": True,
          "off": False, "no": False, "выкл": False, "нет": False}
CHANNELS: dict[str, Channel | None] = {
    **{c.value: c for c in CUSTOMER_CHANNELS}, "tg": Channel.TELEGRAM, "mail": Channel.EMAIL,
    "all": None, "*": None, "everywhere": None, "везде": None}


@dataclass(frozen=True, slots=True)
class ConsentOrder:
    """One change a manager asks for: `kind` on or off, on `channel` (None: every channel)."""

    kind: ConsentKind
    granted: bool
    channel: Channel | None = None


@dataclass(frozen=True, slots=True)
class ConsentOutcome:
    customer_id: int  # the survivor, when the id named a customer merged into another
    changed: list[ConsentState]
    states: list[ConsentState]


def parse(args: str) -> ConsentOrder | None:
    """'' → None (show what holds); 'marketing off sms' → the change; anything else raises
    UsageError saying how to write it."""
    words = args.lower().split()
    if not words:
        return None
    usage = UsageError(Phrase("consent_usage"))
    if len(words) not in (2, 3) or words[0] not in KINDS or words[1] not in SWITCH:
        raise usage
    channel = None
    if len(words) == 3:
        if words[2] not in CHANNELS:
            raise UsageError(Phrase("consent_no_channel", channel=words[2],
                                    known=", ".join(c.value for c in CUSTOMER_CHANNELS)))
        channel = CHANNELS[words[2]]
    return ConsentOrder(KINDS[words[0]], SWITCH[words[1]], channel)


async def apply(core: Core, customer_id: int, orders: Sequence[ConsentOrder], *,
                source: ConsentSource, actor: str) -> ConsentOutcome:
    """Record what the customer told someone of the team; an erased customer is refused."""
    customer = await core.customers.live(customer_id)
    changed: list[ConsentState] = []
    async with core.bus.unit_of_work():
        for order in orders:
            word = core.consent.start if order.granted else core.consent.stop
            changed += await word(customer.id, order.channel, kind=order.kind, source=source,
                                  actor=actor)
    return ConsentOutcome(customer.id, changed, await core.consent.states(customer.id))


async def command(core: Core, customer_id: int, args: str, *, actor: str,
                  language: str) -> str:
    """The answer to `/consent [KIND on|off [CHANNEL]]` about the customer of the topic."""
    try:
        order = parse(args)
    except UsageError as e:
        return e.in_language(language)
    if order is None:
        customer = await core.customers.get(customer_id)
        head = team("consent_head", language)
        states = await core.consent.states(customer.id)
    else:
        outcome = await apply(core, customer_id, [order], source=ConsentSource.MANAGER,
                              actor=actor)
        head = team("consent_changed" if outcome.changed else "consent_unchanged", language)
        states = outcome.states
    return "\n".join([head, *describe(states, language)])
