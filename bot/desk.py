"""The managers' side: replies and commands in a customer's topic, or in a private chat.

Only registered managers act; anything else in the managers' group is ignored and logged. A
plain message in a topic goes to the customer on the channel they last used (or the one `/via`
picked), with its photo or document if it has one; the manager sees a reaction when it is sent
and a note when it failed, and why. An edit of it corrects what the customer got where the
channel allows (bot/toolkit.py, with /r, /replies and /find). Answers to a manager are in
their language; what the whole group reads, in the group's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from bot import campaigns, order_desk, render, scheduling, toolkit
from bot import reports as report_desk
from bot.mirror import Mirror, from_chat
from channels.telegram import TelegramRuntime
from channels.telegram.text import escape
from crm import consent_commands
from crm.consent import describe
from crm.errors import CrmError
from crm.i18n import known_language, team
from crm.models import Cursor, Identity, Manager
from crm.services import Core
from crm.staff import LINK_MINUTES
from crm.types import Attachment, Channel, ConversationStatus, StaffMessage

log = structlog.get_logger(__name__)

CUSTOMER_COMMANDS = {"via", "assign", "close", "reopen", "note", "tag", "untag", "info",
                     "history", "r", "orders", "order", "consent"}
VIA = {"telegram": Channel.TELEGRAM, "email": Channel.EMAIL, "sms": Channel.SMS,
       "webchat": Channel.WEBCHAT, "tg": Channel.TELEGRAM, "mail": Channel.EMAIL,
       "web": Channel.WEBCHAT, "chat": Channel.WEBCHAT}


@dataclass(frozen=True, slots=True)
class Where:
    """Where a manager wrote: the chat, the topic (if any) and the customer it is about."""

    chat_id: int
    thread_id: int | None
    message_id: int
    customer_id: int | None
    lang: str = "en"  # of the manager who wrote: answers to them are in it

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
            "help": self._help, "start": self._help, "r": self._canned,
            "replies": self._replies, "find": self._find,
            "orders": self._orders, "order": self._order, "consent": self._consent,
            "report": self._report, "web": self._web,
            "campaign": self._campaign, "campaigns": self._campaigns, "cancel": self._cancel}

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
                                               customer_id, await self.language(manager,
                                                                                message)))

    async def in_private(self, manager: Manager, message: StaffMessage) -> None:
        customer_id = render.customer_ref(message.reply_to_text)
        await self.act(manager, message, Where(message.chat_id, None, message.message_id,
                                               customer_id, await self.language(manager,
                                                                                message)))

    async def language(self, manager: Manager, message: StaffMessage) -> str:
        """The manager's language: theirs if set; else their Telegram one, remembered."""
        if manager.language:
            return manager.language
        learned = known_language(message.language)
        if learned is None:
            return self.core.settings.team_language
        manager.language = learned
        await Manager.filter(id=manager.id, language=None).update(language=learned)
        return learned

    async def act(self, manager: Manager, message: StaffMessage, where: Where) -> None:
        token = from_chat.set(True)
        try:
            await self._act(manager, message, where)
        except CrmError as e:  # a sentence for the manager, in their language
            log.info("desk.refused", error=str(e), customer_id=where.customer_id)
            await self.say(where, f"⚠️ {e.in_language(where.lang)}")
        finally:
            from_chat.reset(token)

    async def _act(self, manager: Manager, message: StaffMessage, where: Where) -> None:
        text = message.text
        if message.edited:
            await toolkit.edited(self, manager, message, where)
            return
        if message.command is not None:
            name, args = message.command, message.args
            if name in scheduling.COMMANDS:
                await self._team(manager, where, text)
            elif name in CUSTOMER_COMMANDS and where.customer_id is None:
                await self.say(where, team("in_topic" if self.group is not None
                                           else "reply_with_command", where.lang))
            elif name in self._commands:
                await self._commands[name](manager, where, args)
            return
        if where.customer_id is None:
            if self.group is None or where.chat_id != self.group:
                if await campaigns.active(manager):  # a reply to the campaign wizard
                    await campaigns.answer(self, manager, where, text)
                    return
                await self.say(where, team("reply_to_answer", where.lang))
            return  # the team talking among themselves in the General topic
        files = await toolkit.sendable_files(self, message, where)
        if files is None:
            return  # nothing that can go: the manager was told why
        if not text.strip() and not files:
            await self.say(where, team("nothing_to_send", where.lang))
            return
        await self._reply(manager, where, text, await self._channel_choice(where.customer_id),
                          attachments=files)

    async def _reply(self, manager: Manager, where: Where, text: str,
                     channel: Channel | None, *, attachments: tuple[Attachment, ...] = (),
                     html: str | None = None, meta: dict[str, object] | None = None) -> None:
        await self.core.conversations.send(
            where.customer_id or 0, text, channel=channel, author=manager,
            idempotency_key=f"tg:{where.key}", attachments=attachments, html=html,
            meta={"origin": {"chat_id": where.chat_id, "message_id": where.message_id},
                  **(meta or {})})

    async def say(self, where: Where, text: str, *, html: bool = False) -> None:
        block = text if html else render.notice(text, "")
        await self.mirror.answer(where.chat_id, where.thread_id, where.customer_id, [block],
                                 key=where.key, language=where.lang)

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
            await self.say(where, team("via_auto", where.lang))
            return
        channel = VIA.get(word)
        if channel is None:
            await self.say(where, team("via_usage", where.lang))
            return
        if text.strip():
            await self._reply(manager, where, text.strip(), channel)
            return
        if not await Identity.filter(customer_id=where.customer_id, channel=channel).exists():
            await self.say(where, team("via_no_address", where.lang, channel=channel.value))
            return
        if not await Cursor.filter(name=name).update(value={"channel": channel.value}):
            await Cursor.create(name=name, value={"channel": channel.value})
        await self.say(where, team("via_set", where.lang, channel=channel.value))

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
                await self.say(where, team("no_such_manager", where.lang, who=who))
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
            await self.say(where, team("note_usage", where.lang))
            return
        await self.core.conversations.note(where.customer_id or 0, args.strip(), manager)
        self.runtime.react(where.chat_id, where.message_id, "✍")

    async def _tag(self, manager: Manager, where: Where, args: str, add: bool = True) -> None:
        tags = [w for w in args.split() if w.strip("#")]
        if not tags:
            await self.say(where, team("tag_usage", where.lang))
            return
        await self.core.customers.retag(where.customer_id or 0, add=tags if add else (),
                                        remove=() if add else tags)
        self.runtime.react(where.chat_id, where.message_id, "👌")

    async def _untag(self, manager: Manager, where: Where, args: str) -> None:
        await self._tag(manager, where, args, add=False)

    async def _info(self, manager: Manager, where: Where, _args: str) -> None:
        card = await self.core.queries.card(where.customer_id or 0)
        customer, conv = card.customer, card.conversations.latest
        lang = where.lang
        name = customer.name or (customer.identities[0].address if customer.identities
                                 else team("customer_number", lang, id=customer.id))
        lines = [f"<b>{escape(name)}</b> #{customer.id}"]
        for ident in customer.identities:
            bad = f" ⛔ {ident.undeliverable_reason}" if ident.undeliverable_reason else ""
            lines.append(f"{render.mark(ident.channel)}: {escape(ident.address + bad)}")
        state = team(f"state_{conv.status.value}", lang) if conv else "—"
        lines += [
            f"{team('card_tags', lang)}: {escape(', '.join(customer.tags) or '—')}",
            f"{team('card_assignee', lang)}: "
            f"{escape(card.conversations.assignee_name or '—')}",
            f"{team('card_conversation', lang)}: {escape(state)}",
            f"{team('card_lead_source', lang)}: {escape(customer.lead_source or '—')}",
            f"{team('card_language', lang)}: {escape(customer.language or '—')}",
            *(escape(line) for line in describe(card.consent, lang)),
            f"{team('card_orders', lang)}: "
            f"{escape(await order_desk.summary(self.core, customer.id, lang))}",
        ]
        await self.say(where, "\n".join(lines), html=True)

    async def _history(self, manager: Manager, where: Where, args: str) -> None:
        count = int(args) if args.strip().isdigit() else 10
        count = max(1, min(count, 50))
        messages = await self.core.customers.timeline(where.customer_id or 0, limit=count)
        blocks = [render.notice(team("history_head", where.lang, n=len(messages)))]
        for message in messages:
            blocks += render.blocks(await self.mirror.entry(message, language=where.lang))
        await self.mirror.answer(where.chat_id, where.thread_id, where.customer_id, blocks,
                                 key=where.key, language=where.lang)

    async def _help(self, manager: Manager, where: Where, _args: str) -> None:
        await self.say(where, team("help", where.lang))

    async def _canned(self, manager: Manager, where: Where, args: str) -> None:
        await toolkit.canned(self, manager, where, args)

    async def _replies(self, manager: Manager, where: Where, _args: str) -> None:
        await toolkit.list_replies(self, where)

    async def _find(self, manager: Manager, where: Where, args: str) -> None:
        await toolkit.find(self, where, args)

    async def _consent(self, manager: Manager, where: Where, args: str) -> None:
        await self.say(where, await consent_commands.command(
            self.core, where.customer_id or 0, args, actor=f"manager:{manager.id}",
            language=where.lang))

    async def _web(self, manager: Manager, where: Where, _args: str) -> None:
        """A one-time sign-in link to the web console, only in the manager's private chat."""
        if manager.telegram_user_id is None or where.chat_id != manager.telegram_user_id:
            await self.say(where, team("web_private", where.lang))
            return
        url = await self.core.staff.sign_in_link(manager)
        await self.say(where, team("web_link", where.lang, url=url, minutes=LINK_MINUTES))

    async def _orders(self, manager: Manager, where: Where, _args: str) -> None:
        await self.say(where, await order_desk.listing(self.core, where.customer_id or 0,
                                                       where.lang), html=True)

    async def _report(self, manager: Manager, where: Where, args: str) -> None:
        await report_desk.report(self, manager, where, args)

    async def _campaign(self, manager: Manager, where: Where, _args: str) -> None:
        await campaigns.start(self, manager, where)

    async def _campaigns(self, manager: Manager, where: Where, _args: str) -> None:
        await campaigns.listing(self, manager, where)

    async def _cancel(self, manager: Manager, where: Where, _args: str) -> None:
        await campaigns.cancel(self, manager, where)

    async def _order(self, manager: Manager, where: Where, args: str) -> None:
        if not args.strip():
            await self.say(where, team("order_usage", where.lang))
            return
        await self.say(where, await order_desk.details(self.core, where.customer_id or 0,
                                                       args.strip().lstrip("#"), where.lang),
                       html=True)
