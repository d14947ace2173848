"""Consent in one place: marketing, and separately transactional notifications, per channel.

The rules (also in the README, "Consent"):

- A customer's word is kept per kind (marketing, notifications) and per channel, or for every
  channel at once (`channel=None`, stored as "*"). On a channel the newer of the channel's own
  word and the every-channel word counts; with neither, the configured default
  (`[consent] marketing_default`, `notifications_default`).
- People's words go through `stop` and `start`, whoever passes them on (the customer dialogue,
  the API, an import, a manager's `/consent`, `crm customers consent`); they apply the channels'
  rules (`effects`). A stop of marketing stops the channel it concerns; STOPALL, `/stop all` or
  the "on every channel" choice (`everywhere`), and a word about no channel in particular, stop
  every channel. By SMS a word about marketing is a word about every message there, as carriers
  require: SMS STOP (or STOPALL) also stops notifications by SMS, SMS START brings both back.
  A start restores the channel it concerns only: saying START by SMS does not resume email.
  Notifications alone (UPDATES OFF) are their own word and leave marketing as it was.
- `change` records exactly what it is given: the primitive under `stop` and `start`.
- Every change writes one audit row (`consent.changed`, with its source and actor) and emits
  `ConsentChanged`, in the caller's unit of work; asking for what already holds changes nothing.

By SMS, STOP means every message (carriers' rules): `refusal` is asked before anything is
queued for a customer, and after an SMS STOP it lets through only the answers to the customer's
own keywords (HELP, START) and a manager's reply once the customer has written again.

Campaigns and notifications ask `allows` (one customer); lists use `denied_channels`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from crm import sql
from crm.clock import Clock, utcnow
from crm.config import ConsentSettings
from crm.events import ConsentChanged, EventBus
from crm.i18n import Phrase, team
from crm.models import AuditLog, Consent, Identity, Message
from crm.types import Channel, ConsentKind, ConsentSource, Direction

log = structlog.get_logger(__name__)

EVERY_CHANNEL = "*"
_UPSERT = (
    "INSERT INTO consent (customer_id, kind, channel, granted, source, actor, changed_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id, kind, channel) DO UPDATE SET "
    "granted = excluded.granted, source = excluded.source, actor = excluded.actor, "
    "changed_at = excluded.changed_at")
# The channels a customer can be written to; TEST is for tests and local tools, WEBHOOK for
# receivers of events.
CUSTOMER_CHANNELS = tuple(c for c in Channel if c not in (Channel.TEST, Channel.WEBHOOK))


@dataclass(frozen=True, slots=True)
class ConsentState:
    """What holds for one kind on one channel ("*": channels the customer has no word on)."""

    kind: ConsentKind
    channel: str
    granted: bool
    source: str | None = None  # None: nobody said anything, the configured default holds
    actor: str | None = None
    changed_at: datetime | None = None

    @property
    def is_default(self) -> bool:
        return self.source is None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "channel": self.channel, "granted": self.granted,
                "source": self.source, "actor": self.actor,
                "changed_at": self.changed_at.isoformat() if self.changed_at else None}


def effective(rows: Sequence[Consent], kind: ConsentKind, channel: str,
              default: bool) -> ConsentState:
    """The state on `channel` given a customer's rows: the newer of its own and the "*" row."""
    found = [r for r in rows if r.kind is kind and r.channel in (channel, EVERY_CHANNEL)]
    if not found:
        return ConsentState(kind, channel, default)
    row = max(found, key=lambda r: (r.changed_at, r.channel != EVERY_CHANNEL, r.id or 0))
    return ConsentState(kind, channel, row.granted, row.source, row.actor, row.changed_at)


def effects(kind: ConsentKind, channel: Channel | None,
            everywhere: bool = False) -> list[tuple[ConsentKind, Channel | None]]:
    """What a word about `kind` concerning `channel` changes: (kind, channel or None for every
    channel) pairs, in order. Pure; the rules are in the module's docstring."""
    out: list[tuple[ConsentKind, Channel | None]] = [
        (kind, None if everywhere or channel is None else channel)]
    if kind is ConsentKind.MARKETING and channel is Channel.SMS:
        # Carriers: STOP by SMS means no more messages of any kind by SMS; START undoes it.
        out.append((ConsentKind.NOTIFICATIONS, Channel.SMS))
    return out


class Consents:
    """The consent service: change, ask, describe; merge, export and forget follow the customer."""

    model = Consent

    def __init__(self, bus: EventBus, settings: ConsentSettings,
                 clock: Clock = utcnow) -> None:
        self.bus = bus
        self.settings = settings
        self.clock = clock

    def default(self, kind: ConsentKind) -> bool:
        value = self.settings.marketing_default if kind is ConsentKind.MARKETING \
            else self.settings.notifications_default
        return value == "granted"

    async def stop(self, customer_id: int, channel: Channel | None, *, source: ConsentSource,
                   actor: str, kind: ConsentKind = ConsentKind.MARKETING,
                   everywhere: bool = False) -> list[ConsentState]:
        """A person's "stop" about `kind` on `channel` (None: no channel in particular, so every
        channel), with what the channel's rules tie to it; returns the states that changed."""
        return await self._word(customer_id, False, channel, kind, everywhere, source, actor)

    async def start(self, customer_id: int, channel: Channel | None, *, source: ConsentSource,
                    actor: str, kind: ConsentKind = ConsentKind.MARKETING,
                    everywhere: bool = False) -> list[ConsentState]:
        """A person's "start" about `kind` on `channel`: the way back from `stop`."""
        return await self._word(customer_id, True, channel, kind, everywhere, source, actor)

    async def _word(self, customer_id: int, granted: bool, channel: Channel | None,
                    kind: ConsentKind, everywhere: bool, source: ConsentSource,
                    actor: str) -> list[ConsentState]:
        changed: list[ConsentState] = []
        async with self.bus.unit_of_work():
            for each, where in effects(kind, channel, everywhere):
                changed += await self.change(customer_id, each, granted, channel=where,
                                             source=source, actor=actor)
        return changed

    async def change(self, customer_id: int, kinds: ConsentKind | Iterable[ConsentKind],
                     granted: bool, *, channel: Channel | None, source: ConsentSource,
                     actor: str) -> list[ConsentState]:
        """Record exactly this; returns the states that changed (empty: nothing did).

        `channel=None` speaks for every channel, including ones the customer adds later. A
        person's word goes through `stop` / `start`, which add what the channel's rules tie to
        it (by SMS, marketing and notifications go together).
        """
        kinds = [kinds] if isinstance(kinds, ConsentKind) else list(kinds)
        where = channel.value if channel is not None else EVERY_CHANNEL
        changed: list[ConsentState] = []
        async with self.bus.unit_of_work() as tx:
            rows = await Consent.filter(customer_id=customer_id)
            now = self.clock()
            for kind in kinds:
                targets = [where] if channel is not None else \
                    [*(c.value for c in CUSTOMER_CHANNELS), EVERY_CHANNEL]
                if all(effective(rows, kind, c, self.default(kind)).granted == granted
                       for c in targets):
                    continue  # what the customer asks for already holds
                # One statement: two first changes racing (two processes, a STOP and a START
                # sent together) cannot both insert and fail the message that carried them.
                await sql.execute(tx, _UPSERT, [customer_id, kind.value, where, granted,
                                                source.value, actor[:200], now])
                await AuditLog.create(actor=actor[:200], action="consent.changed",
                                      customer_id=customer_id,
                                      detail={"kind": kind.value, "channel": where,
                                              "granted": granted, "source": source.value})
                await self.bus.emit(ConsentChanged(customer_id, kind, where, granted,
                                                   source.value, actor))
                changed.append(ConsentState(kind, where, granted, source.value, actor, now))
                log.info("consent.changed", customer_id=customer_id, kind=kind.value,
                         channel=where, granted=granted, source=source.value)
        return changed

    async def refusal(self, customer_id: int, channel: Channel, author_kind: str, *,
                      answers_customer: bool = False) -> Phrase | None:
        """Why nothing may be sent to the customer on `channel` now, or None.

        Only SMS has such a rule: after STOP by SMS (notifications by SMS denied), the bot and
        the system stay silent there, and a manager's SMS waits until the customer writes again;
        the dialogue's answer to the customer's own keyword (HELP, START) goes.
        """
        if channel is not Channel.SMS or answers_customer:
            return None
        rows = await Consent.filter(customer_id=customer_id, kind=ConsentKind.NOTIFICATIONS,
                                    channel__in=[channel.value, EVERY_CHANNEL])
        state = effective(rows, ConsentKind.NOTIFICATIONS, channel.value,
                          self.default(ConsentKind.NOTIFICATIONS))
        if state.granted:
            return None
        when: Phrase | str = Phrase("sms_stop_when", at=f"{state.changed_at:%Y-%m-%d %H:%M}") \
            if state.changed_at else ""
        if author_kind == "manager" and state.changed_at is not None:
            since = await Message.filter(
                customer_id=customer_id, channel=channel, direction=Direction.IN,
                created_at__gt=state.changed_at).order_by("-id").limit(20)
            if any(not m.meta.get("command") for m in since):
                return None  # they wrote again after the STOP: a reply to that may go
            return Phrase("sms_stop_manager", when=when)
        return Phrase("sms_stop_automatic", when=when)

    async def allows(self, customer_id: int, kind: ConsentKind, channel: Channel) -> bool:
        rows = await Consent.filter(customer_id=customer_id, kind=kind,
                                    channel__in=[channel.value, EVERY_CHANNEL])
        return effective(rows, kind, channel.value, self.default(kind)).granted

    async def states(self, customer_id: int,
                     address_channels: Iterable[str] | None = None) -> list[ConsentState]:
        """Per kind: the state on each channel the customer has an address on, or has spoken
        about, then the state for every other channel ("*"). A caller that has the customer's
        identities at hand passes their channels and spares a query."""
        rows = await Consent.filter(customer_id=customer_id)
        if address_channels is None:
            address_channels = [str(c) for c in await Identity.filter(
                customer_id=customer_id).values_list("channel", flat=True)]
        return self.states_of(rows, address_channels)

    def states_of(self, rows: Sequence[Consent],
                  address_channels: Iterable[str]) -> list[ConsentState]:
        """`states` over rows the caller read itself (the query service reads them in SQL)."""
        channels = {str(c) for c in address_channels}
        channels |= {r.channel for r in rows if r.channel != EVERY_CHANNEL}
        ordered = [c.value for c in CUSTOMER_CHANNELS if c.value in channels]
        ordered += sorted(channels - set(ordered))
        out: list[ConsentState] = []
        for kind in ConsentKind:
            default = self.default(kind)
            out += [effective(rows, kind, c, default) for c in ordered]
            out.append(effective(rows, kind, EVERY_CHANNEL, default))
        return out

    async def denied_channels(self, customer_ids: Sequence[int],
                              kind: ConsentKind = ConsentKind.MARKETING) -> dict[int, list[str]]:
        """For lists: the channels each customer does not take `kind` on ("*": every channel
        they have no word of their own on)."""
        rows = await Consent.filter(customer_id__in=list(customer_ids), kind=kind)
        by_customer: dict[int, list[Consent]] = {}
        for row in rows:
            by_customer.setdefault(row.customer_id, []).append(row)
        out: dict[int, list[str]] = {}
        default = self.default(kind)
        for cid in customer_ids:
            own = by_customer.get(cid, [])
            # "*" stands for the channels they said nothing about (the default, or a STOPALL).
            names = sorted({r.channel for r in own} | {EVERY_CHANNEL})
            denied = [c for c in names if not effective(own, kind, c, default).granted]
            if denied:
                out[cid] = denied
        return out

    # Following the customer (crm/customers.py calls these on merge, export and forget) -----

    async def move(self, source_id: int, target_id: int) -> dict[str, int]:
        """The survivor keeps, per kind and channel, whichever word is newer."""
        moved = 0
        theirs = {(r.kind, r.channel): r for r in await Consent.filter(customer_id=target_id)}
        for row in await Consent.filter(customer_id=source_id):
            other = theirs.get((row.kind, row.channel))
            if other is not None and other.changed_at >= row.changed_at:
                await row.delete()
                continue
            if other is not None:
                await other.delete()
            row.customer_id = target_id
            await row.save(update_fields=["customer_id"])
            moved += 1
        return {"consents": moved}

    async def export(self, customer_id: int) -> dict[str, Any]:
        rows = await Consent.filter(customer_id=customer_id).order_by("kind", "channel")
        return {"consent": [{"kind": r.kind.value, "channel": r.channel, "granted": r.granted,
                             "source": r.source, "actor": r.actor,
                             "changed_at": r.changed_at.isoformat()} for r in rows]}

    async def forget(self, customer_id: int) -> dict[str, int]:
        # The rows hold no personal data and keep opt-out counts honest; the actor may name a
        # person's address (an import file), so it goes.
        return {"consents": await Consent.filter(customer_id=customer_id).update(actor="erased")}


def describe(states: Sequence[ConsentState], language: str | None = None) -> list[str]:
    """One line per kind for people (`crm customers show`, the managers' /info, in their
    language):
    `marketing: telegram yes, sms no (keyword, 2026-12-01), other channels yes (default)`."""
    lines: list[str] = []
    for kind in ConsentKind:
        parts = []
        for state in (s for s in states if s.kind is kind):
            where = team("consent_other_channels", language) \
                if state.channel == EVERY_CHANNEL else state.channel
            source = source_name(state.source, language)
            how = team("consent_default", language) if state.is_default else \
                f"{source}, {state.changed_at:%Y-%m-%d}" if state.changed_at else source
            parts.append(team("consent_part", language, where=where, how=how,
                              answer=team("yes" if state.granted else "no", language)))
        lines.append(team("consent_kind_line", language, parts=", ".join(parts),
                          kind=team(f"consent_kind_{kind.value}", language)))
    return lines


def source_name(source: str | None, language: str | None = None) -> str:
    """Where a word of the customer came from (`keyword`, `command`, …), for people."""
    if not source:
        return ""
    try:
        return team(f"source_{source}", language)
    except KeyError:  # a source of a later version, or a test's: shown as it is
        return source
