"""The Telegram sender: one outbox row becomes one or more Bot API messages.

Within Telegram's limits (its own rolling-window guard on top of the dispatcher's), mapping the
API's answers to outcomes: 429 -> retry after `retry_after`; 403 (blocked) -> permanent, so the
identity is marked and never retried; a deleted forum topic -> recreated and the send repeated.
Texts over 4096 characters are sent in parts; a part already sent is not sent again when a
later part has to be retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import structlog
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from channels.telegram import media
from channels.telegram.limits import Windows, rate_limits
from channels.telegram.text import MAX_TEXT, escape, pack, split_text, utf16_len
from channels.telegram.topics import Topics
from crm.i18n import team
from crm.types import Channel, DeliveryResult, OutboundMessage

log = structlog.get_logger(__name__)


def recreated_header(language: str | None) -> str:
    """The first line in a topic made again after someone deleted it (the group's language)."""
    return f"🔁 <i>{escape(team('topic_recreated', language))}</i>"


def parts_of(message: OutboundMessage) -> list[str]:
    """The texts to send: HTML blocks packed into messages, or plain text split."""
    blocks = message.options.get("blocks")
    header = str(message.options.get("header") or "")
    if isinstance(blocks, list) and blocks:
        if header:  # e.g. the customer's name and #c<id> in a manager's private chat
            room = MAX_TEXT - utf16_len(header) - 1
            return [f"{header}\n{p}" for p in pack([str(b) for b in blocks], room)]
        return pack([str(b) for b in blocks])
    return split_text(message.text)


def retry_after_seconds(error: RetryAfter) -> float:
    # The public property warns (int vs timedelta migration); the value is the same.
    value = getattr(error, "_retry_after", None)
    if value is None:
        return 1.0
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


SHORT_LABEL = 3  # choices this short (1…5) go side by side in one row


def markup_of(message: OutboundMessage) -> Markup | None:
    """The keyboard for a message's choices: inline buttons whose data is each choice's
    action; a choice that requests the phone number becomes Telegram's share-contact button."""
    choices = message.choices
    links = message.options.get("buttons")
    if isinstance(links, list) and links:  # a campaign's link buttons
        return InlineKeyboardMarkup([[InlineKeyboardButton(str(b["text"]), url=str(b["url"]))]
                                     for b in links if isinstance(b, dict)])
    requests = [c for c in choices if c.request == "phone"]
    if requests:
        return ReplyKeyboardMarkup([[KeyboardButton(c.label, request_contact=True)]
                                    for c in requests],
                                   resize_keyboard=True, one_time_keyboard=True)
    if choices:
        buttons = [InlineKeyboardButton(c.label, callback_data=c.action[:64]) for c in choices]
        if all(len(c.label) <= SHORT_LABEL for c in choices):
            return InlineKeyboardMarkup([buttons])
        return InlineKeyboardMarkup([[b] for b in buttons])
    if message.options.get("close_keyboard"):
        return ReplyKeyboardRemove()
    return _legacy_markup(message.options)


def _legacy_markup(options: dict[str, Any]) -> Markup | None:
    """Markup of rows queued before choices existed (raw Bot API markup, survey ratings)."""
    rating = options.get("rating")
    if isinstance(rating, list) and rating:
        return InlineKeyboardMarkup([[InlineKeyboardButton(str(n), callback_data=f"rate:{n}")
                                      for n in rating]])
    raw = options.get("reply_markup")
    if not isinstance(raw, dict):
        return None
    if "inline_keyboard" in raw:
        return InlineKeyboardMarkup.de_json(raw, None)
    if "keyboard" in raw:
        return ReplyKeyboardMarkup.de_json(raw, None)
    if raw.get("remove_keyboard"):
        return ReplyKeyboardRemove()
    return None


class TelegramSender:
    channel = Channel.TELEGRAM
    edits = True  # editMessageText: a manager's correction reaches the customer

    def __init__(self, bot: Bot, topics: Topics | None, *,
                 paid_rate: float | None = None) -> None:
        self.bot = bot
        self.topics = topics
        self.paid = paid_rate is not None  # [telegram] paid_broadcast
        self.limits = rate_limits(paid_rate)
        self.windows = Windows(paid_rate=paid_rate)
        self._progress: dict[int, list[int]] = {}  # outbox id -> message ids of parts sent
        # A campaign's image is uploaded once; later messages send Telegram's file id.
        self.uploaded: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def _turn(self, chat_id: str, paid: bool = False) -> AsyncIterator[None]:
        """The Bot API call inside goes when the windows let it; it counts until answered."""
        # A timed wait on a rolling window: nothing to signal, the time itself frees the slot.
        while (delay := self.windows.wait(chat_id, time.monotonic(), paid)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)
        started = time.monotonic()
        try:
            yield
        finally:
            self.windows.sent(chat_id, started, time.monotonic(), paid)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        try:
            return await self._send(message)
        except RetryAfter as e:
            seconds = retry_after_seconds(e)
            return DeliveryResult.retry(f"flood control: retry after {seconds:g}s", seconds)
        except Forbidden as e:
            return DeliveryResult.permanent(f"forbidden: {e.message}")
        except BadRequest as e:
            return DeliveryResult.permanent(f"bad request: {e.message}")
        except media.FileTooLarge as e:
            return DeliveryResult.permanent(str(e), address_fault=False)
        except NetworkError as e:  # includes TimedOut
            return DeliveryResult.retry(f"network: {e.message}")
        except TelegramError as e:
            return DeliveryResult.retry(f"telegram: {e.message}")

    async def _edit(self, message: OutboundMessage, target: str) -> DeliveryResult:
        try:
            async with self._turn(message.address):
                await media.edit(self.bot, target, message.html or message.text,
                                 caption=bool(message.options.get("edit_caption")),
                                 html=bool(message.html))
        except BadRequest as e:
            if "not modified" not in e.message.lower():  # the same text twice: done already
                raise
        return DeliveryResult.sent(target)

    async def _send(self, message: OutboundMessage) -> DeliveryResult:
        opts = message.options
        chat_id = message.address
        if opts.get("edit_of"):
            return await self._edit(message, str(opts["edit_of"]))
        html = bool(opts.get("html"))
        # Only a campaign's messages carry the flag, and only with paid broadcasts on.
        paid = self.paid and bool(opts.get("paid_broadcast"))
        if message.html and not opts.get("blocks"):  # a canned reply written in Telegram HTML
            message, html = replace(message, text=message.html), True
        steps = media.steps_of(message, parts_of(message))
        done = self._progress.setdefault(message.outbox_id, [])
        customer_id = opts.get("topic_customer_id")
        thread_id: int | None = opts.get("thread_id")
        topics = self.topics if customer_id is not None else None
        if topics is not None:
            thread_id = await topics.thread_for(int(customer_id))  # type: ignore[arg-type]
            if opts.get("reopen_topic"):
                await topics.set_closed(int(customer_id), False)  # type: ignore[arg-type]
        recreated = False
        last: Message | None = None
        index = len(done)
        while index < len(steps):
            step = steps[index]
            text = step.text
            if recreated and index == len(done) and html and step.file is None:
                text = f"{recreated_header(topics.language if topics else None)}\n\n{text}"
            markup = markup_of(message) if index == len(steps) - 1 else None
            try:
                async with self._turn(chat_id, paid):
                    if step.file is not None:
                        last = await media.send_file(self.bot, int(chat_id), thread_id, step,
                                                     html, markup=markup, paid=paid,
                                                     uploaded=self.uploaded)
                    else:
                        last = await self.bot.send_message(
                            chat_id=int(chat_id), text=text, message_thread_id=thread_id,
                            parse_mode="HTML" if html else None, reply_markup=markup,
                            allow_paid_broadcast=True if paid else None)
            except BadRequest as e:
                missing = "thread not found" in e.message.lower()
                if not missing or topics is None or recreated:
                    raise
                thread_id = await topics.recreate(int(customer_id))  # type: ignore[arg-type]
                recreated = True
                continue
            done.append(last.message_id)
            index += 1
        if topics is not None and opts.get("close_topic"):
            await topics.set_closed(int(customer_id), True)  # type: ignore[arg-type]
        self._progress.pop(message.outbox_id, None)
        ids = done or ([last.message_id] if last else [])
        if not ids:
            return DeliveryResult.permanent("nothing to send: the text is empty")
        meta: dict[str, Any] = {"parts": len(ids)} if len(ids) > 1 else {}
        if thread_id is not None:
            meta["thread_id"] = thread_id
        return DeliveryResult.sent(f"{chat_id}:{ids[-1]}", **meta)
