"""Attachments on disk, content-addressed: the same file sent twice is stored once.

Files above the size limit are not kept: the timeline gets their name, type and size and a note,
so a huge attachment never fills the disk or stops the mailbox reader.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from channels.email.parsing import MailPart
from crm.types import Attachment


class AttachmentStore:
    """Writes attachment bytes under `root/ab/cd/<sha256>`; returns the Attachment to store."""

    def __init__(self, root: str | Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def save(self, part: MailPart) -> Attachment:
        digest = hashlib.sha256(part.data).hexdigest()
        size = len(part.data)
        meta: dict[str, object] = {}
        if part.content_id:
            meta["content_id"] = part.content_id
        if size > self.max_bytes:
            meta["note"] = (f"not kept: {size} bytes is over the limit of {self.max_bytes} "
                            "(max_attachment_bytes); the original is still in the mailbox")
            return Attachment(kind=part.kind, file_id=f"sha256:{digest}", filename=part.filename,
                              mime_type=part.mime_type, size=size, path=None, meta=meta)
        path = self.root / digest[:2] / digest[2:4] / digest
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write to a temporary name and rename: a crash never leaves a half file under the
            # final (content-addressed, hence trusted) name.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(part.data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return Attachment(kind=part.kind, file_id=f"sha256:{digest}", filename=part.filename,
                          mime_type=part.mime_type, size=size, path=str(path), meta=meta)
