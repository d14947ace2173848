"""Files of every channel, kept on disk content-addressed: the same file sent twice is kept once.

Adapters hand the bytes of what arrived (a Telegram download, a mail part, a Twilio media
download) to `FileStore.save` and record the Attachment it returns in the message. A file over
`[files] max_bytes` is not kept: the Attachment says so (`meta["too_large"]`, with a note), the
message is stored all the same, and the customer or manager is told (bot/). Downloads read at
most `max_bytes + 1` bytes (`limit`), so a huge file never fills the memory or the disk.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from crm import i18n, links
from crm.i18n import Phrase, Size
from crm.types import Attachment

MB = 1024 * 1024


def megabytes(size: int, language: str | None = None) -> str:
    """12582912 -> '12 MB', 1500000 -> '1.4 MB', 4000 -> '4 KB' (for sentences people read, in
    their language)."""
    return i18n.size(size, language)


def note_of(attachment: Attachment | dict[str, Any], language: str | None = None) -> str:
    """Why a file is not kept, in `language` (the English note for one recorded before notes
    had phrases)."""
    meta = attachment.meta if isinstance(attachment, Attachment) else attachment.get("meta")
    if not isinstance(meta, dict):
        return ""
    phrase = Phrase.from_json(meta.get("note_phrase"))
    return phrase.render(language) if phrase is not None else str(meta.get("note") or "")


def is_kept(attachment: Attachment | dict[str, Any]) -> bool:
    """Whether the file's bytes are with us (a path in the store)."""
    path = attachment.path if isinstance(attachment, Attachment) else attachment.get("path")
    return bool(path)


def too_large(attachment: Attachment | dict[str, Any]) -> bool:
    meta = attachment.meta if isinstance(attachment, Attachment) else attachment.get("meta")
    return bool(isinstance(meta, dict) and meta.get("too_large"))


class FileStore:
    """Writes bytes under `root/ab/cd/<sha256>`; returns the Attachment to record."""

    def __init__(self, root: str | Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    @property
    def limit(self) -> int:
        """Read at most this many bytes of a download: one more than may be kept."""
        return self.max_bytes + 1

    def path_of(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def save(self, data: bytes, *, kind: str, filename: str | None = None,
             mime_type: str | None = None, file_id: str | None = None,
             meta: dict[str, Any] | None = None, note_where: Phrase | None = None) -> Attachment:
        """Keep `data` (or, over the limit, only what is known about it)."""
        size = len(data)
        if size > self.max_bytes:
            return self.oversized(kind, size=size, filename=filename, mime_type=mime_type,
                                  file_id=file_id, meta=meta, note_where=note_where)
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_of(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write to a temporary name and rename: a crash never leaves a half file under the
            # final (content-addressed, hence trusted) name.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return Attachment(kind=kind, file_id=file_id or f"sha256:{digest}", filename=filename,
                          mime_type=mime_type, size=size, path=str(path),
                          meta={**(meta or {}), "sha256": digest})

    def oversized(self, kind: str, *, size: int | None, filename: str | None = None,
                  mime_type: str | None = None, file_id: str | None = None,
                  meta: dict[str, Any] | None = None,
                  note_where: Phrase | None = None) -> Attachment:
        """What is recorded of a file too large to keep. `note_where`: what else holds for
        this channel (where the original still is, a limit of the channel's own)."""
        limit = Size(self.max_bytes)
        shown: Phrase | Size = Size(size) if size else Phrase("file_more_than", limit=limit)
        note = Phrase("file_over_limit", size=shown, limit=limit, where=note_where or "")
        return Attachment(kind=kind, file_id=file_id, filename=filename, mime_type=mime_type,
                          size=size, path=None,
                          meta={**(meta or {}), "too_large": True, "note": note.render(),
                                "note_phrase": note.to_json(), "limit": self.max_bytes})

    def failed(self, attachment: Attachment, reason: str | Phrase) -> Attachment:
        """A file that could not be fetched: recorded with the reason, the message kept."""
        note = Phrase("file_not_fetched", reason=reason)
        return replace(attachment, meta={**attachment.meta, "note": note.render(),
                                         "note_phrase": note.to_json()})

    def read(self, attachment: Attachment | dict[str, Any]) -> bytes:
        path = attachment.path if isinstance(attachment, Attachment) else attachment.get("path")
        if not path:
            raise FileNotFoundError("the file was not kept")
        return Path(str(path)).read_bytes()


class FileLinks:
    """Signed, expiring download links to the files of our messages: `/f/<token>`.

    The token names a message and the file's place in it, not a path: a customer whose data
    was erased has no files left to be fetched, whatever links are still around. The key is the
    one of every public link (crm/links.py `Signer`).
    """

    PURPOSE = "file"

    def __init__(self, public_url: str, signer: links.Signer, hours: float) -> None:
        self.public_url = public_url.rstrip("/")
        self.signer = signer
        self.hours = hours

    async def url(self, message_id: int, index: int) -> str:
        expires = self.signer.clock() + timedelta(hours=self.hours)
        token = await self.signer.sign(self.PURPOSE, f"{message_id}.{index}", expires)
        return f"{self.public_url}/f/{token}"

    async def attach(self, attachment: Attachment, message_id: int, index: int) -> Attachment:
        """The attachment with its download link (`meta["url"]`), if its bytes are kept."""
        if not attachment.path:
            return attachment
        return replace(attachment, meta={**attachment.meta,
                                         "url": await self.url(message_id, index)})

    async def resolve(self, token: str) -> tuple[int, int]:
        """(message id, index) of a token; LinkTampered / LinkExpired otherwise."""
        payload = await self.signer.verify(self.PURPOSE, token)
        message, _, index = payload.partition(".")
        if not (message.isdigit() and index.isdigit()):
            raise links.LinkTampered("this link is not valid")
        return int(message), int(index)
