"""Files in Telegram messages we send: which Bot API method, by file id or by upload, and the
steps (texts, then files) one outbox row becomes.

A file that came from Telegram is sent again by its file id (no upload); any other file is
uploaded from the file store: a photo of at most 10 MB with sendPhoto, anything else with
sendDocument (at most 50 MB, the Bot API's limits). The first file carries the text as its
caption when the text fits one (1024 characters); otherwise the text goes first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyKeyboardMarkup, ReplyKeyboardRemove

from channels.telegram.text import utf16_len
from crm.files import megabytes
from crm.types import Attachment, OutboundMessage

CAPTION_LIMIT = 1024
PHOTO_UPLOAD_LIMIT = 10 * 1024 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")


class FileTooLarge(Exception):
    """A file Telegram will not take from a bot: the row fails with this reason."""


@dataclass(frozen=True, slots=True)
class Step:
    """One Bot API message of a row: a text, or a file with an optional caption."""

    text: str = ""
    file: Attachment | None = None
    caption: str | None = None


def telegram_id(attachment: Attachment) -> str | None:
    """The Telegram file id of a file that came from Telegram (only those have a unique id)."""
    return attachment.file_id if attachment.meta.get("file_unique_id") else None


def sendable(attachment: Attachment) -> bool:
    return bool(attachment.path or telegram_id(attachment))


def steps_of(message: OutboundMessage, parts: list[str]) -> list[Step]:
    texts = [p for p in parts if p.strip()]
    files = [a for a in message.attachments if sendable(a)]
    if not files:
        return [Step(text=t) for t in texts]
    caption = message.options.get("caption")
    if caption is None and len(texts) == 1 and utf16_len(texts[0]) <= CAPTION_LIMIT:
        caption, texts = texts[0], []
    steps = [Step(text=t) for t in texts]
    steps += [Step(file=f, caption=str(caption) if i == 0 and caption else None)
              for i, f in enumerate(files)]
    return steps


Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


async def send_file(bot: Bot, chat_id: int, thread_id: int | None, step: Step,
                    html: bool, *, markup: Markup | None = None, paid: bool = False,
                    uploaded: dict[str, str] | None = None) -> Message:
    """Send one file step. `uploaded` remembers Telegram's id of what we uploaded (a
    campaign's image goes up once); `paid` adds `allow_paid_broadcast`."""
    attachment = step.file
    assert attachment is not None
    text = step.caption or None
    mode = "HTML" if html and text else None
    file_id = telegram_id(attachment)
    known = (uploaded or {}).get(attachment.file_id or "")
    if markup is not None or paid or known:
        # A campaign's image: a photo with its buttons, by upload the first time.
        flag = True if paid else None
        if known:
            return await bot.send_photo(chat_id, known, caption=text, parse_mode=mode,
                                        message_thread_id=thread_id, reply_markup=markup,
                                        allow_paid_broadcast=flag)
        if file_id is None:
            data = await asyncio.to_thread(Path(str(attachment.path)).read_bytes)
            sent = await bot.send_photo(chat_id, data, caption=text, parse_mode=mode,
                                        filename=attachment.filename,
                                        message_thread_id=thread_id, reply_markup=markup,
                                        allow_paid_broadcast=flag)
            if uploaded is not None and attachment.file_id and sent.photo:
                uploaded[attachment.file_id] = sent.photo[-1].file_id
            return sent
    if file_id is not None:
        kind = attachment.kind
        if kind == "photo":
            return await bot.send_photo(chat_id, file_id, caption=text, parse_mode=mode,
                                        message_thread_id=thread_id)
        if kind == "voice":
            return await bot.send_voice(chat_id, file_id, caption=text, parse_mode=mode,
                                        message_thread_id=thread_id)
        if kind == "video":
            return await bot.send_video(chat_id, file_id, caption=text, parse_mode=mode,
                                        message_thread_id=thread_id)
        if kind == "audio":
            return await bot.send_audio(chat_id, file_id, caption=text, parse_mode=mode,
                                        message_thread_id=thread_id)
        if kind == "animation":
            return await bot.send_animation(chat_id, file_id, caption=text, parse_mode=mode,
                                            message_thread_id=thread_id)
        if kind == "video_note":
            return await bot.send_video_note(chat_id, file_id, message_thread_id=thread_id)
        return await bot.send_document(chat_id, file_id, caption=text, parse_mode=mode,
                                       message_thread_id=thread_id)
    data = await asyncio.to_thread(Path(str(attachment.path)).read_bytes)
    name = attachment.filename or Path(str(attachment.path)).name
    if attachment.kind == "photo" and len(data) <= PHOTO_UPLOAD_LIMIT \
            and (attachment.mime_type or "image/jpeg") in PHOTO_TYPES:
        return await bot.send_photo(chat_id, data, caption=text, parse_mode=mode,
                                    filename=name, message_thread_id=thread_id)
    if len(data) > UPLOAD_LIMIT:
        raise FileTooLarge(f"{name} is {megabytes(len(data))}: Telegram takes files of at most "
                           f"{megabytes(UPLOAD_LIMIT)} from a bot")
    return await bot.send_document(chat_id, data, caption=text, parse_mode=mode,
                                   filename=name, message_thread_id=thread_id)


async def edit(bot: Bot, target: str, text: str, *, caption: bool, html: bool) -> None:
    """Change the text (or caption) of a message we sent, known by "chat_id:message_id"."""
    chat, _, message_id = target.rpartition(":")
    mode = "HTML" if html else None
    if caption:
        await bot.edit_message_caption(chat_id=int(chat), message_id=int(message_id),
                                       caption=text, parse_mode=mode)
    else:
        await bot.edit_message_text(text=text, chat_id=int(chat), message_id=int(message_id),
                                    parse_mode=mode)
