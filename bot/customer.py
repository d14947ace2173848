"""The customer dialogue, for every channel: recognise, store, act, answer.

Every channel hands each customer message to `Dialogue.receive` (the core's inbox). It
recognises what the message asks (bot/intents.py, with each channel's triggers), stores it in
the timeline (an intent is recorded but not routed to the managers, unless the message says
more, or asks for a person), applies the rules that live in crm/ (consent, the after-hours
reply and the acknowledgement, an undeliverable mark cleared by the customer writing again,
the survey's rating), and answers with channel-neutral replies: text plus choices that each
channel renders (Telegram buttons, numbered lines by SMS and email).

All of it happens in one unit of work with the message, and answers are keyed by the stored
message: a message handled twice is stored once and answered once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from bot import menu
from bot.intents import Context, Intent, Recognised, needs_history, recognise
from crm.automation import automation
from crm.errors import InvalidAddress, SendRejected
from crm.files import megabytes, too_large
from crm.i18n import pick_language, t
from crm.identity import reply_warning
from crm.models import Customer, Message
from crm.outbox import mark_reachable
from crm.services import Core
from crm.timeline import IngestResult
from crm.types import Channel, Choice, ConsentKind, ConsentSource, Direction, InboundMessage

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Turn:
    """One customer message being answered."""

    msg: InboundMessage
    result: IngestResult
    customer: Customer
    language: str

    @property
    def channel(self) -> Channel:
        return self.msg.channel

    @property
    def answerable(self) -> bool:
        """Whether an answer can reach the sender: not an SMS sender name or short code."""
        return reply_warning(self.channel, self.msg.sender) is None


Handler = Callable[[Turn, Recognised], Awaitable[None]]


class Dialogue:
    """The core's inbox: what arrives on any channel goes through here."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.replies = automation(core).replies
        self.handlers: dict[Intent, Handler] = {
            Intent.GREET: self._greet, Intent.MENU: self._menu, Intent.HELP: self._help,
            Intent.STOP: self._stop, Intent.STOP_ALL: self._stop_all,
            Intent.START: self._start, Intent.LANGUAGE: self._set_language,
            Intent.TALK: self._talk, Intent.RATE: self._rate, Intent.PHONE: self._phone,
            Intent.CONTACT: self._contact, Intent.UNKNOWN: self._unknown,
        }

    def handle(self, intent: Intent, handler: Handler) -> None:
        """Plug in an intent: the orders issue adds ORDERS and ORDER here (and a menu item)."""
        self.handlers[intent] = handler

    @property
    def enabled(self) -> frozenset[Intent]:
        return frozenset(self.handlers)

    # --- the one path of a customer message ------------------------------------------------

    async def receive(self, msg: InboundMessage) -> IngestResult:
        async with self.core.bus.unit_of_work():
            found = None if msg.edit_of is not None else await self._recognise(msg)
            routed = found is None or found.more or found.intent is Intent.TALK
            result = await self.core.timeline.ingest(self._as_stored(msg, found, routed))
            if result.duplicate:
                return result
            customer = await self.core.customers.get(result.customer_id)
            turn = Turn(msg, result, customer, self._answer_language(customer, msg, found))
            if not msg.automated and result.undeliverable and result.identity_id is not None:
                await mark_reachable(result.identity_id,
                                     opted_in=found is not None and found.intent is Intent.START)
            answered = False
            talking = routed and not msg.automated and msg.edit_of is None \
                and result.conversation_id is not None and turn.answerable
            if talking and result.conversation_id is not None:
                answered = await self.replies.after_hours(
                    result.conversation_id, result.message_id, msg.channel, turn.language,
                    identity_id=result.identity_id)
            if found is not None and not (answered and found.intent is Intent.TALK):
                await self.handlers[found.intent](turn, found)
            if talking and found is None and result.conversation_id is not None:
                await self.replies.acknowledge(result.conversation_id, result.message_id,
                                               msg.channel, turn.language,
                                               key=f"{msg.channel.value}:{result.message_id}",
                                               identity_id=result.identity_id)
            if not msg.automated and any(too_large(a) for a in msg.attachments):
                await self._files_too_large(turn)
            if found is not None:
                log.info("dialogue.intent", channel=msg.channel.value, intent=found.intent.value,
                         customer_id=customer.id, routed=routed)
        return result

    async def _recognise(self, msg: InboundMessage) -> Recognised | None:
        """The intent, with what the bot said last looked up only when it matters (a YES, a
        bare number); a rating nobody asked for is an ordinary message."""
        unsubscribe = self.core.settings.email.unsubscribe_mailbox \
            if msg.channel is Channel.EMAIL else None
        ctx = Context(self.enabled, unsubscribe_address=unsubscribe)
        customer = None
        if needs_history(msg):
            try:
                customer = await self.core.customers.by_address(msg.channel, msg.sender)
            except InvalidAddress:
                customer = None  # ingest decides what to keep of an odd sender
            if customer is not None:
                kind, choices = await _last_said(customer, msg.channel, self.core.clock())
                ctx = replace(ctx, after_stop=kind in ("stop", "stop_all"), choices=choices)
        found = recognise(msg, ctx)
        if found is not None and found.intent is Intent.RATE and msg.action is None and (
                customer is None
                or await automation(self.core).followups.open_survey(customer.id) is None):
            return None  # "5" long after the survey: a message for the team, not lost
        return found

    def _as_stored(self, msg: InboundMessage, found: Recognised | None,
                   routed: bool) -> InboundMessage:
        """What the timeline keeps: an intent is recorded as a command (not routed); a button
        press is kept as the label a person would read."""
        if found is None:
            return msg
        text = msg.text
        if msg.action is not None:
            language = pick_language(msg.language, self.core.settings.bot.default_language)
            text = menu.label(found, language) or msg.text
        return replace(msg, text=text, command=None if routed else found.intent.value)

    def _answer_language(self, customer: Customer, msg: InboundMessage,
                         found: Recognised | None) -> str:
        default = self.core.settings.bot.default_language
        if found is not None and found.language == "ru":
            return "ru"  # СТОП is answered in Russian whatever we knew before
        return customer.language or pick_language(msg.language, default)

    # --- answers ---------------------------------------------------------------------------

    async def say(self, turn: Turn, kind: str, text: str, choices: Sequence[Choice] = (),
                  options: dict[str, Any] | None = None) -> None:
        """An answer on the channel that asked, in the timeline, keyed by what it answers."""
        if turn.msg.headers.get("gateway_answered") or not turn.answerable:
            # The SMS provider answered this keyword itself (Twilio Advanced Opt-Out), or the
            # sender is a name or short code nothing can be sent to.
            return
        # Follows a merge this very turn made (a shared phone number joins two customers).
        customer = await self.core.customers.get(turn.customer.id)
        try:
            await self.core.conversations.send(
                customer.id, text, channel=turn.channel, identity_id=turn.result.identity_id,
                author_kind="bot",
                idempotency_key=f"dialogue:{turn.result.message_id}:{kind}",
                choices=choices, language=turn.language, options=options,
                meta={"kind": kind, "dialogue": True})
        except SendRejected as e:  # e.g. no longer reachable: the message is still stored
            log.info("dialogue.answer_not_sent", customer_id=turn.customer.id, kind=kind,
                     reason=str(e))

    async def _files_too_large(self, turn: Turn) -> None:
        """The message is stored; the customer learns at once that its file is not."""
        big = [a for a in turn.msg.attachments if too_large(a)]
        names = ", ".join(a.filename or t(f"file_{a.kind}" if a.kind in ("photo", "video",
                                                                          "voice")
                                          else "file_file", turn.language) for a in big)
        limit = int(big[0].meta.get("limit") or self.core.files.max_bytes)
        await self.say(turn, "file_too_large", t("file_too_large", turn.language, names=names,
                                                 limit=megabytes(limit, turn.language)))

    def _menu_choices(self, turn: Turn, opted_out: bool = False) -> tuple[Choice, ...]:
        return menu.main_menu(turn.channel, turn.language, opted_out=opted_out,
                              enabled=self.enabled)

    async def _opted_out(self, turn: Turn) -> bool:
        return not await self.core.consent.allows(turn.customer.id, ConsentKind.MARKETING,
                                                  turn.channel)

    # --- intents ---------------------------------------------------------------------------

    async def _greet(self, turn: Turn, found: Recognised) -> None:
        if found.arg and not turn.customer.lead_source:
            await self.core.customers.update(turn.customer.id, lead_source=found.arg[:200])
        # A bare /start after /stop asks for our messages again; a deep link's /start (an ad,
        # a QR code) is no such request: the menu offers the way back instead.
        if not found.arg and await self._opted_out(turn):
            await self._start(turn, found)
        first = turn.msg.headers.get("first_name")
        greeting = t("greeting", turn.language, name=f", {first}" if first else "",
                     company=self.core.settings.bot.company_name)
        await self.say(turn, "greet", greeting,
                       self._menu_choices(turn, await self._opted_out(turn)))

    async def _menu(self, turn: Turn, found: Recognised) -> None:
        await self.say(turn, "menu", t("menu_prompt", turn.language),
                       self._menu_choices(turn, await self._opted_out(turn)))

    async def _help(self, turn: Turn, found: Recognised) -> None:
        await self.say(turn, "help", menu.help_text(turn.channel, turn.language,
                                                    self.core.settings.bot.company_name),
                       self._menu_choices(turn, await self._opted_out(turn)))

    async def _unknown(self, turn: Turn, found: Recognised) -> None:
        text = t("unknown_command", turn.language) + " " + menu.help_text(
            turn.channel, turn.language, self.core.settings.bot.company_name)
        await self.say(turn, "unknown", text, self._menu_choices(turn))

    async def _stop(self, turn: Turn, found: Recognised) -> None:
        # By SMS the consent service stops every message there, as carriers require.
        await self.core.consent.stop(turn.customer.id, turn.channel,
                                     source=self._source(turn, found), actor="customer")
        choices: tuple[Choice, ...] = ()
        if turn.channel is not Channel.SMS and await self._reachable_elsewhere(turn):
            choices = (menu.stop_everywhere(turn.language),)
        await self.say(turn, "stop", menu.opted_out_text(turn.channel, turn.language,
                                                         self.core.settings.bot.company_name),
                       choices)

    async def _stop_all(self, turn: Turn, found: Recognised) -> None:
        await self.core.consent.stop(turn.customer.id, turn.channel, everywhere=True,
                                     source=self._source(turn, found), actor="customer")
        await self.say(turn, "stop_all", t("opted_out_everywhere", turn.language,
                                           company=self.core.settings.bot.company_name))

    async def _start(self, turn: Turn, found: Recognised) -> None:
        await self.core.consent.start(turn.customer.id, turn.channel,
                                      source=self._source(turn, found), actor="customer")
        await self.say(turn, "start", menu.opted_in_text(turn.channel, turn.language,
                                                         self.core.settings.bot.company_name))

    def _source(self, turn: Turn, found: Recognised) -> ConsentSource:
        return ConsentSource.GATEWAY if turn.msg.headers.get("gateway_answered") \
            else found.source

    async def _reachable_elsewhere(self, turn: Turn) -> bool:
        """Whether the customer has another channel that still gets marketing."""
        states = await self.core.consent.states(turn.customer.id)
        return any(s.kind is ConsentKind.MARKETING and s.granted and s.channel not in (
            turn.channel.value, "*") for s in states)

    async def _set_language(self, turn: Turn, found: Recognised) -> None:
        if not found.arg:
            await self.say(turn, "language", t("language_ask", turn.language),
                           menu.languages())
            return
        await self.core.customers.update(turn.customer.id, language=found.arg)
        await self.say(replace(turn, language=found.arg), "language",
                       t("language_set", found.arg))

    async def _talk(self, turn: Turn, found: Recognised) -> None:
        # The message was routed like any other: a manager is assigned and told.
        await self.say(turn, "talk", t("talk_prompt", turn.language))

    async def _rate(self, turn: Turn, found: Recognised) -> None:
        if not found.arg.isdigit() or not await automation(self.core).followups.rate(
                turn.customer.id, int(found.arg)):
            log.info("dialogue.rating_not_asked", customer_id=turn.customer.id)

    async def _phone(self, turn: Turn, found: Recognised) -> None:
        await self.say(turn, "phone", t("phone_request", turn.language),
                       (menu.share_phone(turn.language),))

    async def _contact(self, turn: Turn, found: Recognised) -> None:
        contact = next((a.meta for a in turn.msg.attachments if a.kind == "contact"), None)
        if contact is None:
            return
        if str(contact.get("user_id")) != turn.msg.sender:
            await self.say(turn, "phone", t("phone_not_own", turn.language),
                           (menu.share_phone(turn.language),))
            return
        try:
            await self.core.customers.link_identity(turn.customer.id, Channel.SMS,
                                                    str(contact.get("phone_number") or ""))
        except InvalidAddress:
            await self.say(turn, "phone", t("phone_invalid", turn.language),
                           (menu.share_phone(turn.language),))
            return
        await self.say(turn, "phone", t("phone_linked", turn.language),
                       options={"close_keyboard": True})


CHOICES_STAY_OPEN = timedelta(hours=24)


async def _last_said(customer: Customer, channel: Channel,
                     now: datetime) -> tuple[str | None, tuple[Choice, ...]]:
    """What the bot said last on this channel, if the customer has not written since: its kind
    ("stop", "menu", …) and the choices a bare number can answer (those the channel showed,
    within a day)."""
    last = await Message.filter(customer_id=customer.id, channel=channel,
                                direction__in=[Direction.IN, Direction.OUT]).order_by(
        "-id").first()
    if last is None or last.direction is not Direction.OUT or last.author_kind != "bot" \
            or now - last.created_at > CHOICES_STAY_OPEN:
        return None, ()
    kind = last.meta.get("kind")
    raw = last.meta.get("choices")
    choices = tuple(Choice.from_json(c) for c in raw if isinstance(c, dict)) \
        if isinstance(raw, list) and last.meta.get("choices_shown", True) else ()
    return (str(kind) if kind else None), choices
