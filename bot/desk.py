"""The managers' side: replies and commands in a customer's topic, or in a private chat.

Only registered managers act; anything else in the managers' group is ignored and logged. A
plain message in a topic goes to the customer on the channel they last used (or the one `/via`
picked); the manager sees a reaction when it is sent and a note when it failed, and why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from bot import render, scheduling
from bot.mirror import Mirror, from_chat
from channels.telegram import TelegramRuntime
from channels.telegram.text import escape
from crm.consent import describe
from crm.errors import CrmError
from crm.models import Cursor, Customer, Identity, Manager
from crm.services import Core
from crm.types import Channel, ConversationStatus, StaffMessage

log = structlog.get_logger(__name__)

CUSTOMER_COMMANDS = {"via", "assign", "close", "reopen", "note", "tag", "untag", "info",
                     "history"}
VIA = {"telegram": Channel.TELEGRAM, "email": Channel.EMAIL, "sms": Channel.SMS,
       "tg": Channel.TELEGRAM, "mail": Channel.EMAIL}
HELP = ("Write in a customer's topic to answer them. Commands: /via telegram|email|sms [text], "
        "/assign @name|me, /close, /reopen, /note TEXT, /tag TAG…, /untag TAG…, /info, "
        "/history [N], /online, /away, /remind, /followup, /tasks, /queue.")


@dataclass(frozen=True, slots=True)
class Where:
    """Where a manager wrote: the chat, the topic (if any) and the customer it is about."""

    chat_id: int
    thread_id: int | None
    message_id: int
    customer_id: int | None

    @property
    def key(self) -> str:
        return f"{self.chat_id}:{self.message_id}"


class Desk:
    def __init__(self, core: Core, runtime: TelegramRuntime, mirror: Mirror) -> None:
        self.core = core
        self.runtime = runtime
        self.mirror = mirror
        self.group = core.settings.telegram.managers_chat_id
        self._commands: dict[str, Callable[[Manager, Where, str], Awaitable[None]]] = {
            "via": self._via, "assign": self._assign, "close": self._close,
            "reopen": self._reopen, "note": self._note, "tag": self._tag,
            "untag": self._untag, "info": self._info, "history": self._history,
            "help": self._help, "start": self._help}

    async def in_group(self, message: StaffMessage) -> None:
        manager = await self.core.managers.by_telegram(message.user_id)
        if manager is None:
            log.warning("telegram.not_a_manager", user_id=message.user_id,
                        chat_id=message.chat_id, text=message.text[:80])
            return
        thread = message.thread_id
        customer_id = await self.runtime.topics.customer_of(thread) \
            if thread is not None and self.runtime.topics is not None else None
        await self.act(manager, message, Where(message.chat_id, thread, message.message_id,
                                               customer_id))

    async def in_private(self, manager: Manager, message: StaffMessage) -> None:
        customer_id = render.customer_ref(message.reply_to_text)
        await self.act(manager, message, Where(message.chat_id, None, message.message_id,
                                               customer_id))

    async def act(self, manager: Manager, message: StaffMessage, where: Where) -> None:
        token = from_chat.set(True)
        try:
            await self._act(manager, message, where)
        except CrmError as e:  # a sentence for the manager; the detail is in the log
            await self.say(where, f"⚠️ {e}")
        finally:
            from_chat.reset(token)

    async def _act(self, manager: Manager, message: StaffMessage, where: Where) -> None:
        text = message.text
        if message.command is not None:
            name, args = message.command, message.args
            if name in scheduling.COMMANDS:
                await self._team(manager, where, text)
            elif name in CUSTOMER_COMMANDS and where.customer_id is None:
                await self.say(where, "Write this in a customer's topic."
                               if self.group is not None else
                               "Reply to a customer's message with this command.")
            elif name in self._commands:
                await self._commands[name](manager, where, args)
            return
        if where.customer_id is None:
            if self.group is None or where.chat_id != self.group:
                await self.say(where, "Reply to a customer's message to answer them.")
            return  # the team talking among themselves in the General topic
        if not text.strip():
            await self.say(where, "Only text can be sent to customers from here for now.")
            return
        await self._reply(manager, where, text, await self._channel_choice(where.customer_id))

    async def _reply(self, manager: Manager, where: Where, text: str,
                     channel: Channel | None) -> None:
        await self.core.conversations.send(
            where.customer_id or 0, text, channel=channel, author=manager,
            idempotency_key=f"tg:{where.key}",
            meta={"origin": {"chat_id": where.chat_id, "message_id": where.message_id}})

    async def say(self, where: Where, text: str, *, html: bool = False) -> None:
        block = text if html else render.notice(text, "")
        await self.mirror.answer(where.chat_id, where.thread_id, where.customer_id, [block],
                                 key=where.key)

    # --- commands --------------------------------------------------------------------------

    async def _team(self, manager: Manager, where: Where, text: str) -> None:
        reply = await scheduling.answer(self.core, manager, where.customer_id, text,
                                        self.core.clock(), ref=where.key)
        if reply:
            await self.say(where, reply)

    async def _channel_choice(self, customer_id: int) -> Channel | None:
        row = await Cursor.filter(name=f"telegram.via:{customer_id}").first()
        value = row.value.get("channel") if row else None
        return Channel(value) if isinstance(value, str) else None

    async def _via(self, manager: Manager, where: Where, args: str) -> None:
        word, _, text = args.partition(" ")
        word = word.lower()
        name = f"telegram.via:{where.customer_id}"
        if word == "auto":
            await Cursor.filter(name=name).delete()
            await self.say(where, "Replies go to the channel the customer last used.")
            return
        channel = VIA.get(word)
        if channel is None:
            await self.say(where, "Usage: /via telegram|email|sms [text], or /via auto.")
            return
        if text.strip():
            await self._reply(manager, where, text.strip(), channel)
            return
        if not await Identity.filter(customer_id=where.customer_id, channel=channel).exists():
            await self.say(where, f"This customer has no {channel.value} address.")
            return
        if not await Cursor.filter(name=name).update(value={"channel": channel.value}):
            await Cursor.create(name=name, value={"channel": channel.value})
        await self.say(where, f"Replies now go by {channel.value} (/via auto to undo).")

    async def _assign(self, manager: Manager, where: Where, args: str) -> None:
        who = args.strip()
        target: Manager | None
        if who in ("", "me"):
            target = manager
        elif who in ("nobody", "none", "-"):
            target = None
        else:
            target = await self.core.managers.by_username(who)
            if target is None:
                await self.say(where, f"No manager {who}: use /assign @username or /assign me.")
                return
        await self.core.conversations.assign(where.customer_id or 0, target,
                                             actor=f"manager:{manager.id}")

    async def _close(self, manager: Manager, where: Where, _args: str) -> None:
        await self.core.conversations.set_status(where.customer_id or 0,
                                                 ConversationStatus.CLOSED,
                                                 actor=f"manager:{manager.id}")

    async def _reopen(self, manager: Manager, where: Where, _args: str) -> None:
        await self.core.conversations.set_status(where.customer_id or 0,
                                                 ConversationStatus.OPEN,
                                                 actor=f"manager:{manager.id}")

    async def _note(self, manager: Manager, where: Where, args: str) -> None:
        if not args.strip():
            await self.say(where, "Usage: /note TEXT (kept in the timeline, never sent).")
            return
        await self.core.conversations.note(where.customer_id or 0, args.strip(), manager)
        self.runtime.react(where.chat_id, where.message_id, "✍")

    async def _tag(self, manager: Manager, where: Where, args: str, add: bool = True) -> None:
        tags = {w.lstrip("#").lower() for w in args.split() if w.strip("#")}
        if not tags:
            await self.say(where, "Usage: /tag TAG… or /untag TAG…")
            return
        customer = await self.core.customers.get(where.customer_id or 0)
        now = set(customer.tags) | tags if add else set(customer.tags) - tags
        await self.core.customers.update(customer.id, tags=sorted(now))
        self.runtime.react(where.chat_id, where.message_id, "👌")

    async def _untag(self, manager: Manager, where: Where, args: str) -> None:
        await self._tag(manager, where, args, add=False)

    async def _info(self, manager: Manager, where: Where, _args: str) -> None:
        card = await self.core.queries.card(where.customer_id or 0)
        customer, conv = card.customer, card.conversations.latest
        name = customer.name or (customer.identities[0].address if customer.identities
                                 else f"customer #{customer.id}")
        lines = [f"<b>{escape(name)}</b> #{customer.id}"]
        for ident in customer.identities:
            bad = f" ⛔ {ident.undeliverable_reason}" if ident.undeliverable_reason else ""
            lines.append(f"{render.mark(ident.channel)}: {escape(ident.address + bad)}")
        lines += [
            f"tags: {escape(', '.join(customer.tags) or '—')}",
            f"assignee: {escape(card.conversations.assignee_name or '—')}",
            f"conversation: {conv.status.value if conv else '—'}",
            f"lead source: {escape(customer.lead_source or '—')}",
            f"language: {escape(customer.language or '—')}",
            *(escape(line) for line in describe(card.consent)),
            f"orders: {escape(await _recent_orders(Customer(id=customer.id)))}",
        ]
        await self.say(where, "\n".join(lines), html=True)

    async def _history(self, manager: Manager, where: Where, args: str) -> None:
        count = int(args) if args.strip().isdigit() else 10
        count = max(1, min(count, 50))
        messages = await self.core.customers.timeline(where.customer_id or 0, limit=count)
        blocks = [render.notice(f"The last {len(messages)} entries:")]
        for message in messages:
            blocks += render.blocks(await self.mirror.entry(message))
        await self.mirror.answer(where.chat_id, where.thread_id, where.customer_id, blocks,
                                 key=where.key)

    async def _help(self, manager: Manager, where: Where, _args: str) -> None:
        await self.say(where, HELP)


async def _recent_orders(customer: Customer) -> str:
    # Orders arrive with their own issue; until then there is nothing to list.
    del customer
    return "—"

