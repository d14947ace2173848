"""The managers' chat as a mirror of every customer's timeline, from any channel.

In-transaction subscribers to the core's events write outbox rows to the customer's forum topic
(or, without a forum, to the managers' private chats), so a mirror commits with its message.

Coalescing: Telegram lets a bot post 20 messages a minute into one group. A row still queued
for a customer's topic is extended instead of adding another, so a burst (one customer writing
ten lines, a reply and its acknowledgement) becomes one Telegram message, and the topic is
seconds late, not minutes. The update is `UPDATE … WHERE state = 'queued'`: if the dispatcher
claimed the row meanwhile, nothing is updated and a new row is queued (on PostgreSQL the claim
skips a row our transaction has locked, so nothing falls between the two).

Files: a message's files are mirrored as the files themselves, one row each (never extended),
the first with the entry as its caption when it fits; what follows a file joins a new row, so
the topic keeps the order. Texts are in the group's language ([telegram] managers_language); in
private chats (no group) and a notice to one manager, in each manager's own.
"""

from __future__ import annotations

import contextvars
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import structlog

from bot import render
from channels.telegram import TelegramRuntime
from channels.telegram.text import escape, utf16_len
from crm.actors import actor_named
from crm.events import (
    ConsentChanged,
    ConversationChanged,
    CustomersMerged,
    DeliveryChanged,
    MessageEdited,
    MessageQueued,
    MessageReceived,
    TeamNotice,
    TeamReport,
)
from crm.files import is_kept, note_of
from crm.i18n import Phrase, Text, customer_label, in_language, team
from crm.identity import reply_warning
from crm.models import Conversation, Customer, CustomerTopic, Identity, Manager, Message, Outbox
from crm.services import Core
from crm.types import (
    Attachment,
    Channel,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    OutboundMessage,
    OutboxState,
    Priority,
)

log = structlog.get_logger(__name__)

# Set while a manager's own message in the chat is handled: what they wrote is already there.
from_chat: contextvars.ContextVar[bool] = contextvars.ContextVar("crm_from_chat", default=False)
COALESCE_LIMIT = 12_000  # characters of one row; past it a new row starts
# Once half of a chat's window is spent, a new row waits this long so that what follows joins
# it: the budget goes further (one message per customer, not one per line) at a small delay.
COALESCE_DELAY = 2.0
# What to post: blocks as they are (already in their reader's language), or made per language.
Blocks = list[str] | Callable[[str], list[str] | Awaitable[list[str]]]


class Target(NamedTuple):
    """Where a mirror goes: a chat, the language it is read in, and for a manager's private
    chat the header naming the customer (None: the customer's topic in the group)."""

    address: str
    lang: str
    header: str | None


class Mirror:
    def __init__(self, core: Core, runtime: TelegramRuntime) -> None:
        self.core = core
        self.runtime = runtime
        self.group = core.settings.telegram.managers_chat_id
        self.lang = core.settings.team_language

    def install(self) -> None:
        bus = self.core.bus
        bus.subscribe(MessageReceived, self._received, phase="in_transaction")
        bus.subscribe(MessageQueued, self._queued, phase="in_transaction")
        bus.subscribe(MessageEdited, self._edited, phase="in_transaction")
        bus.subscribe(ConversationChanged, self._changed, phase="in_transaction")
        bus.subscribe(TeamNotice, self._notice, phase="in_transaction")
        bus.subscribe(TeamReport, self._report, phase="in_transaction")
        bus.subscribe(CustomersMerged, self._merged, phase="in_transaction")
        bus.subscribe(ConsentChanged, self._consent, phase="in_transaction")
        bus.subscribe(DeliveryChanged, self._delivery_failed, phase="in_transaction")
        bus.subscribe(DeliveryChanged, self._delivery_shown, phase="after_commit")

    # --- events ----------------------------------------------------------------------------

    async def _received(self, event: MessageReceived) -> None:
        if event.command is not None:
            return  # /start, menu buttons, a shared phone: the bot's business, not the team's
        message = await Message.get(id=event.message_id)
        await self.mirror(event.customer_id, message, key=f"m{message.id}",
                          reopen=event.direction is Direction.IN)

    async def _queued(self, event: MessageQueued) -> None:
        message = await Message.get(id=event.message_id)
        if from_chat.get() and not message.meta.get("canned"):
            return  # what a manager wrote is in the chat already; `/r KEY` shows only the key
        if message.meta.get("dialogue"):
            return  # the bot's answer to a menu button or a keyword: not the team's business
        await self.mirror(event.customer_id, message, key=f"m{message.id}")

    async def mirror(self, customer_id: int, message: Message, *, key: str,
                     reopen: bool = False) -> None:
        """A timeline entry into the chat: as text, or as its files with a caption; for each
        reader in their language."""
        files = [Attachment(**a) for a in message.attachments if is_kept(a)]  # type: ignore[arg-type]
        entries: dict[str, render.Entry] = {}
        for target in await self.targets(customer_id):
            if target.lang not in entries:
                entries[target.lang] = await self.entry(message, language=target.lang)
            entry = entries[target.lang]
            single = render.caption(entry) if len(files) == 1 == len(message.attachments) \
                else None
            if single is None:
                await self._to(target, customer_id, render.blocks(entry), key, reopen=reopen)
            for i, file in enumerate(files):
                text = single or render.file_caption(entry, file.filename or file.kind)
                await self._file_to(target, customer_id, file, text, key=f"{key}:f{i}",
                                    reopen=reopen and single is not None)

    async def _edited(self, event: MessageEdited) -> None:
        if from_chat.get():
            return  # the manager's own correction: they see it where they made it
        message = await Message.get(id=event.message_id)

        async def blocks(lang: str) -> list[str]:
            return render.blocks(await self.entry(message, edited=True, language=lang))

        await self.post(event.customer_id, blocks,
                        key=f"e{message.id}:{uuid.uuid4().hex[:8]}")

    async def _changed(self, event: ConversationChanged) -> None:
        if event.change == "merged":
            return  # the topic says "merged into this customer"; the survivor's goes on
        who = await actor_named(event.actor)
        closed = event.status is ConversationStatus.CLOSED
        assignee = await Manager.get_or_none(id=event.assignee_id) \
            if event.assignee_id and not closed else None

        async def blocks(lang: str) -> list[str]:
            if closed:
                return [render.notice(team("closed_by", lang, who=in_language(who, lang)))]
            return [render.notice(team(
                "conversation_state", lang, state=team(f"state_{event.status.value}", lang),
                assignee=assignee.name if assignee else team("nobody", lang),
                who=in_language(who, lang)))]

        await self.post(event.customer_id, blocks,
                        key=f"c{event.conversation_id}:{uuid.uuid4().hex[:8]}",
                        close=closed, reopen=not closed)

    async def _notice(self, event: TeamNotice) -> None:
        if self.group is not None and event.customer_id is not None:
            await self.post(event.customer_id,
                            lambda lang: [render.notice(event.render(lang), "🔔")],
                            key=f"n{event.key}")
            return
        if self.group is not None and event.manager_id is None:
            block = render.notice(event.render(self.lang), "🔔")
            await self._enqueue(str(self.group), [block], f"tgnotice:{event.key}", None, {})
            return
        targets = [event.manager_id] if event.manager_id is not None else \
            [m.id for m in await Manager.filter(active=True)]
        for manager in await Manager.filter(id__in=targets, active=True,
                                            telegram_user_id__isnull=False):
            own = render.notice(event.render(manager.language or self.lang), "🔔")
            await self._enqueue(str(manager.telegram_user_id), [own],
                                f"tgnotice:{event.key}:{manager.id}", None, {})

    async def _report(self, event: TeamReport) -> None:
        manager = await Manager.get_or_none(id=event.manager_id, active=True)
        if manager is not None and manager.telegram_user_id is not None:  # console-only staff
            await self.send_file(manager.telegram_user_id, None, event.photo, event.caption,
                                 key=f"report:{event.key}")

    async def send_file(self, chat_id: int, thread_id: int | None, file: Attachment,
                        caption: str, key: str) -> None:
        """A file of the bot's own (a report's chart) where a manager asked, with a plain-text
        caption (escaped here for Telegram's HTML)."""
        options: dict[str, Any] = {"caption": escape(caption)[:1024]}
        if thread_id:
            options["thread_id"] = thread_id
        await self._enqueue(str(chat_id), [], f"tgfile:{key}", None, options,
                            attachments=(file,))

    async def _merged(self, event: CustomersMerged) -> None:
        await self.post(event.target_id,
                        lambda lang: [render.notice(team("merged", lang, id=event.source_id))],
                        key=f"merged{event.source_id}")

    async def _consent(self, event: ConsentChanged) -> None:
        """A line in the customer's topic, if they have one: worth knowing before writing to
        them, not worth a topic of its own."""
        if self.group is None or not await CustomerTopic.filter(
                customer_id=event.customer_id, chat_id=self.group).exists():
            return
        await self.post(event.customer_id, lambda lang: [render.notice(render.consent_line(
            event.kind.value, event.channel, event.granted, event.source, lang))],
            key=f"consent:{event.kind.value}:{event.channel}:{uuid.uuid4().hex[:8]}")

    async def _delivery_failed(self, event: DeliveryChanged) -> None:
        if event.status is not DeliveryStatus.FAILED or event.customer_id is None:
            return
        if event.message_id is None:
            await self._file_not_shown(event)
            return
        message = await Message.get_or_none(id=event.message_id)
        if message is None or message.meta.get("campaign_id"):
            return  # a campaign's failures are its figures (crm campaigns stats), not topics
        await self.post(event.customer_id,
                        lambda lang: [render.failure(event.error, event.channel, lang)],
                        key=f"f{event.message_id}:{event.outbox_id}")

    async def _file_not_shown(self, event: DeliveryChanged) -> None:
        """A file of ours the chat refused (over Telegram's 50 MB, …): its caption and why, as
        text, so what the customer wrote is not lost with the file."""
        row = await Outbox.get_or_none(id=event.outbox_id) if event.outbox_id else None
        if row is None or row.channel is not Channel.TELEGRAM \
                or not row.idempotency_key.startswith("tgmirror:"):
            return
        files = row.payload.get("attachments")
        if not isinstance(files, list) or not files or not isinstance(files[0], dict):
            return
        options = row.payload.get("options")
        options = options if isinstance(options, dict) else {}
        name = str(files[0].get("filename") or files[0].get("kind") or "file")
        why = render.notice(team("file_not_shown", self.lang, name=name,
                                 reason=event.error or team("unknown_reason", self.lang)), "⚠️")
        caption = str(options.get("caption") or "")
        where = {"topic_customer_id": options["topic_customer_id"]} \
            if "topic_customer_id" in options else {}
        await self._enqueue(row.address, [b for b in (caption, why) if b],
                            f"tgmirror:{row.address}:{event.customer_id}:nf{row.id}",
                            event.customer_id, where)

    async def _delivery_shown(self, event: DeliveryChanged) -> None:
        if event.message_id is None or event.batched:
            return  # a campaign's message: no manager's message to react to
        message = await Message.get_or_none(id=event.message_id)
        origin = message.meta.get("origin") if message else None
        if not isinstance(origin, dict):
            return
        emoji = {DeliveryStatus.SENT: "👍", DeliveryStatus.DELIVERED: "👍",
                 DeliveryStatus.READ: "👀", DeliveryStatus.FAILED: "👎"}.get(event.status)
        if emoji:
            self.runtime.react(int(origin["chat_id"]), int(origin["message_id"]), emoji)

    # --- rendering -------------------------------------------------------------------------

    async def entry(self, message: Message, edited: bool = False,
                    language: str | None = None) -> render.Entry:
        lang = language or self.lang
        who, warning = team("who_system", lang), None
        if message.direction is Direction.IN:
            who = in_language(await customer_name(
                message.customer_id, str(message.meta.get("sender_name") or "") or None), lang)
            identity = await Identity.get_or_none(id=message.identity_id) \
                if message.identity_id is not None else None
            phrase = reply_warning(message.channel, identity.address) if identity else None
            warning = phrase.render(lang) if phrase is not None else None
        elif message.author_id is not None:
            author = await Manager.get_or_none(id=message.author_id)
            who = author.name if author else team("who_manager", lang)
        elif message.author_kind == "bot":
            who = team("who_bot", lang)
        headers = message.meta.get("headers")
        subject = headers.get("subject") if isinstance(headers, dict) else None
        said = Phrase.from_json(message.meta.get("phrase")) \
            if message.direction is Direction.EVENT else None
        reply = message.meta.get("campaign_reply")
        return render.Entry(message.direction, message.channel, message.text, who,
                            attachments=[_label(a, lang) for a in message.attachments],
                            subject=subject if message.channel is Channel.EMAIL else None,
                            automated=message.automated, edited=edited, warning=warning,
                            language=lang, phrase=said,
                            campaign=str(reply.get("name")) if isinstance(reply, dict)
                            else None)

    # --- writing to the chat ---------------------------------------------------------------

    async def post(self, customer_id: int, blocks: Blocks, *, key: str,
                   close: bool = False, reopen: bool = False) -> None:
        """Queue `blocks` for the customer's topic, or the managers' private chats: the same
        blocks, or made for each reader's language (`blocks(lang)`)."""
        made: dict[str, list[str]] = {}
        for target in await self.targets(customer_id):
            if target.lang not in made:
                shown = blocks if isinstance(blocks, list) else blocks(target.lang)
                made[target.lang] = await shown if inspect.isawaitable(shown) else shown
            await self._to(target, customer_id, made[target.lang], key, close=close,
                           reopen=reopen)

    async def targets(self, customer_id: int) -> list[Target]:
        """Where what is about this customer goes: their topic, in the group's language; else
        the private chats of `private_targets`, each in its manager's language."""
        if self.group is not None:
            return [Target(str(self.group), self.lang, None)]
        name = await customer_name(customer_id)
        targets = []
        for manager in await self.private_targets(customer_id):
            lang = manager.language or self.lang
            header = render.private_header(in_language(name, lang), customer_id)
            targets.append(Target(str(manager.telegram_user_id), lang, header))
        return targets

    async def _to(self, target: Target, customer_id: int, blocks: list[str], key: str, *,
                  close: bool = False, reopen: bool = False) -> None:
        if not blocks:
            return
        options: dict[str, Any] = {"header": target.header} if target.header is not None \
            else {"topic_customer_id": customer_id, "close_topic": close, "reopen_topic": reopen}
        await self._coalesce(target.address, customer_id, blocks, key, options)

    async def _file_to(self, target: Target, customer_id: int, file: Attachment, caption: str,
                       *, key: str, reopen: bool = False) -> None:
        """Queue one file for the customer's topic (or a manager's private chat)."""
        address = target.address
        if target.header is None:
            options: dict[str, Any] = {"topic_customer_id": customer_id,
                                       "reopen_topic": reopen, "caption": caption}
        else:
            headed = f"{target.header}\n{caption}"
            if utf16_len(headed) > render.CAPTION_LIMIT:
                # With the header it would be cut: the text goes whole, before its file.
                await self._coalesce(address, customer_id, [caption], f"{key}:t",
                                     {"header": target.header})
                headed = target.header
            options = {"caption": headed}
        await self._enqueue(address, [], f"tgmirror:{address}:{customer_id}:{key}",
                            customer_id, options, attachments=(file,))

    async def answer(self, chat_id: int, thread_id: int | None, customer_id: int | None,
                     blocks: list[str], key: str, language: str | None = None) -> None:
        """A reply of the bot to a manager where they wrote (in `language`, theirs)."""
        if customer_id is not None and self.group is not None and chat_id == self.group:
            await self.post(customer_id, blocks, key=key)
            return
        options: dict[str, Any] = {"thread_id": thread_id} if thread_id else {}
        if customer_id is not None and self.group is None:
            name = in_language(await customer_name(customer_id), language or self.lang)
            options["header"] = render.private_header(name, customer_id)
        await self._enqueue(str(chat_id), blocks, f"tgans:{key}", customer_id, options)

    async def private_targets(self, customer_id: int) -> list[Manager]:
        """The assignee; else the managers online; else every manager."""
        conv = await Conversation.filter(customer_id=customer_id).order_by("-id").first()
        if conv is not None and conv.assignee_id is not None:
            manager = await Manager.get_or_none(id=conv.assignee_id, active=True)
            if manager is not None and manager.telegram_user_id is not None:
                return [manager]
        # Staff of the web console only (no Telegram id) read it there.
        managers = await Manager.filter(active=True, telegram_user_id__isnull=False) \
            .order_by("id")
        online = [m for m in managers if m.availability.value == "online"]
        return online or managers

    async def _coalesce(self, address: str, customer_id: int, blocks: list[str], key: str,
                        options: dict[str, Any]) -> None:
        prefix = f"tgmirror:{address}:{customer_id}:"
        row = await Outbox.filter(channel=Channel.TELEGRAM, address=address,
                                  state=OutboxState.QUEUED,
                                  idempotency_key__startswith=prefix).order_by("-id").first()
        if row is not None and not row.payload.get("attachments"):  # a file row stays whole
            old = dict(row.payload.get("options") or {})  # type: ignore[call-overload]
            merged = [*old.get("blocks", []), *blocks]
            if sum(utf16_len(b) for b in merged) <= COALESCE_LIMIT:
                opts = {**old, "blocks": merged}
                if options.get("close_topic"):
                    opts["close_topic"] = True
                elif options.get("reopen_topic"):
                    opts["close_topic"] = False
                opts["reopen_topic"] = bool(old.get("reopen_topic")) or bool(
                    options.get("reopen_topic"))
                payload = {**row.payload, "text": "\n\n".join(merged), "options": opts}
                updated = await Outbox.filter(id=row.id, state=OutboxState.QUEUED).update(
                    payload=payload)
                if updated:
                    return
        busy = self.runtime.sender.windows.used(address, time.monotonic()) >= 0.5
        await self._enqueue(address, blocks, prefix + key, customer_id, options,
                            delay=COALESCE_DELAY if busy else 0.0)

    async def _enqueue(self, address: str, blocks: list[str], key: str,
                       customer_id: int | None, options: dict[str, Any],
                       delay: float = 0.0, attachments: tuple[Attachment, ...] = ()) -> None:
        await self.core.outbox.enqueue(
            OutboundMessage(Channel.TELEGRAM, address, "\n\n".join(blocks),
                            options={"html": True, "blocks": blocks, **options},
                            attachments=attachments),
            idempotency_key=key[:200], priority=Priority.NOTIFY, customer_id=customer_id,
            delay_seconds=delay)


async def customer_name(customer_id: int, fallback: str | None = None) -> Text:
    """Their name, else `fallback`, else their first address, else "customer #12"."""
    customer = await Customer.get_or_none(id=customer_id)
    if customer is not None and customer.name:
        return customer.name
    if fallback:
        return fallback
    identity = await Identity.filter(customer_id=customer_id).order_by("id").first()
    return identity.address if identity else customer_label(None, customer_id)


def _label(attachment: dict[str, object], lang: str) -> str:
    """How a file is named in a text block: its name, and why it is not there if it is not."""
    name = str(attachment.get("filename") or attachment.get("kind") or "file")
    meta = attachment.get("meta")
    if is_kept(attachment) or not isinstance(meta, dict):
        return name
    if meta.get("too_large"):
        return team("file_label_too_large", lang, name=name)
    note = note_of(attachment, lang)
    return f"{name} ({note})" if note else name
