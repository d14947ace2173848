"""The customer bot: /start (deep links, language, menu), /stop, buttons, a shared phone, and
one acknowledgement per unanswered conversation.

Every customer update is stored first (the timeline), then answered; answers are outbox rows
keyed by the update, so handling an update twice answers once.
"""

from __future__ import annotations

from typing import Any

import structlog
from telegram import Update

from bot import menu, scheduling
from channels.telegram import TelegramRuntime
from channels.telegram.normalize import to_inbound
from crm.errors import InvalidAddress, SendRejected
from crm.i18n import pick_language, t
from crm.models import Conversation, Customer, Identity, Message
from crm.services import Core
from crm.types import (
    Channel,
    ConsentKind,
    ConsentSource,
    Direction,
    InboundMessage,
    OutboundMessage,
    Priority,
)

log = structlog.get_logger(__name__)


class CustomerBot:
    def __init__(self, core: Core, runtime: TelegramRuntime) -> None:
        self.core = core
        self.runtime = runtime

    async def handle(self, update: Update) -> None:
        msg = to_inbound(update, self.runtime.username)
        if msg is None:
            return
        result = await self.core.timeline.ingest(msg)
        if result.duplicate:
            return
        # Whoever writes to the bot has not blocked it (any more): let us answer again.
        await Identity.filter(channel=Channel.TELEGRAM, address=msg.sender).exclude(
            undeliverable_reason=None).update(undeliverable_reason=None, undeliverable_at=None)
        customer = await self.core.customers.get(result.customer_id)
        lang = customer.language or pick_language(
            msg.language, self.core.settings.bot.default_language)
        if msg.command is not None:
            await self._command(customer, lang, msg, update)
        elif msg.edit_of is None and result.conversation_id is not None:
            await self._acknowledge(customer, result.conversation_id, result.message_id, msg)

    async def _command(self, customer: Customer, lang: str, msg: InboundMessage,
                       update: Update) -> None:
        command = msg.command or ""
        args = msg.text.partition(" ")[2].strip()
        if command == "start":
            if args and not customer.lead_source:
                await self.core.customers.update(customer.id, lead_source=args[:200])
            if await self.core.consent.change(customer.id, ConsentKind.MARKETING, True,
                                              channel=Channel.TELEGRAM,
                                              source=ConsentSource.COMMAND, actor="customer"):
                await self.say(customer, msg, "optin", t("opted_in", lang))
            first = update.effective_user.first_name if update.effective_user else None
            greeting = t("greeting", lang, name=f", {first}" if first else "",
                         company=self.core.settings.bot.company_name)
            await self.say(customer, msg, "start", greeting,
                           reply_markup=menu.main_menu(lang, opted_out=False))
        elif command == "stop":
            await self.core.consent.change(customer.id, ConsentKind.MARKETING, False,
                                           channel=Channel.TELEGRAM,
                                           source=ConsentSource.COMMAND, actor="customer")
            await self.say(customer, msg, "stop", t("opted_out", lang))
        elif command in ("help", "menu"):
            await self.say(customer, msg, command, t("help", lang),
                           reply_markup=menu.main_menu(lang, not await self.core.consent.allows(
                               customer.id, ConsentKind.MARKETING, Channel.TELEGRAM)))
        elif command == "contact":
            await self._phone(customer, lang, msg, update)
        elif command.startswith("button:"):
            await self._button(customer, lang, msg, command.removeprefix("button:"))
        else:
            await self.say(customer, msg, "unknown", t("help", lang))

    async def _button(self, customer: Customer, lang: str, msg: InboundMessage,
                      data: str) -> None:
        if data == menu.TALK:
            await self.say(customer, msg, "talk", t("talk_prompt", lang))
        elif data == menu.ORDERS:
            await self.say(customer, msg, "orders", t("orders_soon", lang))
        elif data == menu.PHONE:
            await self.say(customer, msg, "phone", t("phone_request", lang),
                           reply_markup=menu.phone_keyboard(lang))
        elif data == menu.HELP:
            await self.say(customer, msg, "help", t("help", lang))
        elif data == menu.OPT_IN:
            await self.core.consent.change(customer.id, ConsentKind.MARKETING, True,
                                           channel=Channel.TELEGRAM,
                                           source=ConsentSource.BUTTON, actor="customer")
            await self.say(customer, msg, "optin", t("opted_in", lang))
        elif await scheduling.rating(self.core, customer.id, data) is not None:
            pass  # a survey answer: stored, and thanked by the follow-ups
        else:
            log.info("telegram.unknown_button", data=data[:64])

    async def _phone(self, customer: Customer, lang: str, msg: InboundMessage,
                     update: Update) -> None:
        message = update.effective_message
        contact = message.contact if message else None
        if contact is None:
            return
        if contact.user_id != int(msg.sender):
            await self.say(customer, msg, "phone", t("phone_not_own", lang),
                           reply_markup=menu.phone_keyboard(lang))
            return
        try:
            await self.core.customers.link_identity(customer.id, Channel.SMS,
                                                    contact.phone_number)
        except InvalidAddress:
            await self.say(customer, msg, "phone", t("phone_invalid", lang),
                           reply_markup=menu.phone_keyboard(lang))
            return
        await self.say(customer, msg, "phone", t("phone_linked", lang),
                       reply_markup=menu.REMOVE_KEYBOARD)

    async def _acknowledge(self, customer: Customer, conversation_id: int, message_id: int,
                           msg: InboundMessage) -> None:
        """One acknowledgement while no manager has answered the conversation."""
        conv = await Conversation.get(id=conversation_id)
        if conv.acknowledged:
            return
        answered = await Message.filter(conversation_id=conv.id, direction=Direction.OUT).filter(
            author_kind="manager").exists()
        # Something else (the after-hours reply) already answered this very message.
        replied_now = await Message.filter(conversation_id=conv.id, direction=Direction.OUT,
                                           id__gt=message_id).exists()
        await Conversation.filter(id=conv.id).update(acknowledged=True)
        if answered or replied_now:
            return
        lang = customer.language or pick_language(msg.language,
                                                  self.core.settings.bot.default_language)
        try:
            await self.core.conversations.send(
                customer.id, t("ack", lang), channel=Channel.TELEGRAM, author_kind="bot",
                idempotency_key=f"tgack:{msg.external_id}", meta={"kind": "ack"})
        except SendRejected as e:  # e.g. they blocked the bot and wrote again: still stored
            log.info("telegram.ack_rejected", customer_id=customer.id, reason=str(e))

    async def say(self, customer: Customer, msg: InboundMessage, kind: str, text: str,
                  reply_markup: dict[str, Any] | None = None) -> None:
        """An answer of the menu: an outbox row, keyed by what it answers."""
        options: dict[str, Any] = {"reply_markup": reply_markup} if reply_markup else {}
        await self.core.outbox.enqueue(
            OutboundMessage(Channel.TELEGRAM, msg.sender, text, options=options),
            idempotency_key=f"tgbot:{msg.external_id}:{kind}", priority=Priority.LIVE,
            customer_id=customer.id)
