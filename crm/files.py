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

from crm import links
from crm.types import Attachment

MB = 1024 * 1024


def megabytes(size: int) -> str:
    """12582912 -> '12 MB', 1500000 -> '1.4 MB', 4000 -> '4 KB' (for sentences people read)."""
    if size < 1024:
        return f"{size} bytes"
    if size < MB:
        return f"{size / 1024:.0f} KB"
    value = size / MB
    return f"{value:.0f} MB" if value >= 10 or value == int(value) else f"{value:.1f} MB"


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
             meta: dict[str, Any] | None = None, note_where: str = "") -> Attachment:
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
                  meta: dict[str, Any] | None = None, note_where: str = "") -> Attachment:
        """What is recorded of a file too large to keep."""
        shown = megabytes(size) if size else "more than " + megabytes(self.max_bytes)
        note = f"not kept: {shown} is over the limit of {megabytes(self.max_bytes)}" \
               f" ([files] max_bytes){note_where}"
        return Attachment(kind=kind, file_id=file_id, filename=filename, mime_type=mime_type,
                          size=size, path=None,
                          meta={**(meta or {}), "too_large": True, "note": note,
                                "limit": self.max_bytes})

    def failed(self, attachment: Attachment, reason: str) -> Attachment:
        """A file that could not be fetched: recorded with the reason, the message kept."""
        return replace(attachment, meta={**attachment.meta, "note": f"not kept: {reason}"})

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
