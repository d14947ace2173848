"""Files that come with Telegram messages, fetched into the file store at the adapter's edge.

Telegram sends only a file id; `getFile` and a download of `/file/bot<token>/<file_path>` bring
the bytes, at most 20 MB (the Bot API's limit for bots) and at most `[files] max_bytes`. What is
larger, or cannot be fetched, is recorded with a note instead, and the message is stored all
the same. Runs before the update's unit of work: no database lock is held while downloading.
"""

from __future__ import annotations

import asyncio
import dataclasses

import structlog
from telegram import Bot
from telegram.error import BadRequest, TelegramError

from channels.telegram.normalize import Incoming
from crm.files import FileStore
from crm.i18n import Phrase, Size
from crm.types import Attachment

log = structlog.get_logger(__name__)

GETFILE_LIMIT = 20 * 1024 * 1024  # what the Bot API lets a bot download
KINDS = ("photo", "document", "voice", "video", "audio", "video_note", "animation")
# What Telegram does not name: a name and type the other channels can show.
DEFAULTS = {"photo": ("photo.jpg", "image/jpeg"), "voice": ("voice.ogg", "audio/ogg"),
            "video_note": ("video.mp4", "video/mp4"), "video": ("video.mp4", "video/mp4"),
            "animation": ("animation.mp4", "video/mp4")}
_TOO_BIG = Phrase("file_telegram_limit", limit=Size(GETFILE_LIMIT))


class TelegramFiles:
    def __init__(self, bot: Bot, store: FileStore) -> None:
        self.bot = bot
        self.store = store

    async def fetch(self, incoming: Incoming) -> Incoming:
        """The same update with each file's bytes kept (or a note why not)."""
        source = incoming.customer or incoming.staff
        if source is None or not source.attachments:
            return incoming
        kept = tuple([await self._one(a) for a in source.attachments])
        customer = dataclasses.replace(incoming.customer, attachments=kept) \
            if incoming.customer is not None else None
        staff = dataclasses.replace(incoming.staff, attachments=kept) \
            if incoming.staff is not None else None
        return dataclasses.replace(incoming, customer=customer, staff=staff)

    async def _one(self, attachment: Attachment) -> Attachment:
        if attachment.kind not in KINDS or not attachment.file_id or attachment.path:
            return attachment
        name, mime = DEFAULTS.get(attachment.kind, (None, None))
        attachment = dataclasses.replace(attachment,
                                         filename=attachment.filename or name,
                                         mime_type=attachment.mime_type or mime)
        limit = min(self.store.max_bytes, GETFILE_LIMIT)
        if attachment.size is not None and attachment.size > limit:
            return self._oversized(attachment, attachment.size)
        try:
            file = await self.bot.get_file(str(attachment.file_id))
            if file.file_size is not None and file.file_size > limit:
                return self._oversized(attachment, file.file_size)
            data = bytes(await file.download_as_bytearray())
        except BadRequest as e:
            if "too big" in e.message.lower():
                return self._oversized(attachment, attachment.size)
            log.warning("telegram.file_not_fetched", error=e.message)
            return self.store.failed(attachment, Phrase("file_telegram_refused",
                                                        error=e.message))
        except TelegramError as e:
            log.warning("telegram.file_not_fetched", error=str(e))
            return self.store.failed(attachment, Phrase("file_download_failed", error=str(e)))
        return await asyncio.to_thread(
            self.store.save, data, kind=attachment.kind, filename=attachment.filename,
            mime_type=attachment.mime_type, file_id=attachment.file_id, meta=attachment.meta)

    def _oversized(self, attachment: Attachment, size: int | None) -> Attachment:
        where = _TOO_BIG if size is None or size > GETFILE_LIMIT else None
        return self.store.oversized(attachment.kind, size=size, filename=attachment.filename,
                                    mime_type=attachment.mime_type, file_id=attachment.file_id,
                                    meta=attachment.meta, note_where=where)
