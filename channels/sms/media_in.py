"""A customer's MMS media, fetched from Twilio into the file store before the message is stored.

Twilio's webhook names each file by a MediaUrl; we download it with the account's Basic auth
(which works whether or not "HTTP Basic Authentication for media" is on), reading at most
`[files] max_bytes + 1` bytes. A file that is larger, or cannot be fetched, is recorded with a
note; the message is stored all the same.
"""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
import structlog

from channels.sms.session import HttpSession
from crm.config import TwilioSettings
from crm.files import FileStore
from crm.i18n import Phrase
from crm.types import Attachment, InboundMessage

log = structlog.get_logger(__name__)
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "video/mp4": "mp4",
               "audio/mpeg": "mp3", "audio/ogg": "ogg", "application/pdf": "pdf",
               "text/vcard": "vcf"}


def kind_of(mime: str | None) -> str:
    top = (mime or "").split("/")[0]
    return {"image": "photo", "video": "video", "audio": "audio"}.get(top, "document")


class TwilioMedia:
    def __init__(self, http: HttpSession, store: FileStore, twilio: TwilioSettings) -> None:
        self.http = http
        self.store = store
        self.auth = {"Authorization": aiohttp.encode_basic_auth(twilio.account_sid,
                                                                twilio.auth_token)}

    async def fetch(self, msg: InboundMessage) -> InboundMessage:
        if not msg.attachments:
            return msg
        kept = [await self._one(a, i) for i, a in enumerate(msg.attachments)]
        return dataclasses.replace(msg, attachments=tuple(kept))

    async def _one(self, attachment: Attachment, index: int) -> Attachment:
        url = attachment.file_id
        if not url or attachment.path:
            return attachment
        mime = attachment.mime_type
        kind = kind_of(mime)
        name = f"{kind}-{index + 1}.{_EXTENSIONS.get(mime or '', 'bin')}"
        base = dataclasses.replace(attachment, kind=kind, filename=name)
        try:
            async with self.http.get().get(url, headers=self.auth) as response:
                if response.status != 200:
                    return self.store.failed(base, Phrase("file_twilio_answered",
                                                          status=response.status))
                if (response.content_length or 0) > self.store.max_bytes:
                    return self.store.oversized(kind, size=response.content_length,
                                                filename=name, mime_type=mime, file_id=url)
                data = await response.content.read(self.store.limit)
        except (aiohttp.ClientError, TimeoutError) as e:
            log.warning("sms.media_not_fetched", error=str(e))
            return self.store.failed(base, Phrase("file_download_failed",
                                                  error=str(e) or type(e).__name__))
        if len(data) > self.store.max_bytes:
            return self.store.oversized(kind, size=None, filename=name, mime_type=mime,
                                        file_id=url)
        return await asyncio.to_thread(self.store.save, data, kind=kind, filename=name,
                                       mime_type=mime, file_id=url)
