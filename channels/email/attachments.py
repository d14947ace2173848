"""A mail's parts into the file store (crm/files.py), content-addressed like every channel's.

A part above the size limit is not kept: the timeline gets its name, type and size and a note,
so a huge attachment never fills the disk or stops the mailbox reader.
"""

from __future__ import annotations

from channels.email.parsing import MailPart
from crm.config import Settings
from crm.files import FileStore
from crm.i18n import Phrase
from crm.types import Attachment

IN_THE_MAILBOX = Phrase("file_in_the_mailbox")


def mail_store(settings: Settings, shared: FileStore) -> FileStore:
    """The store of every channel, unless the deprecated [email] keys say otherwise."""
    email = settings.email
    if not email.attachments_dir and email.max_attachment_bytes is None:
        return shared
    return FileStore(email.attachments_dir or settings.files.dir,
                     settings.files.max_bytes if email.max_attachment_bytes is None
                     else email.max_attachment_bytes)


class AttachmentStore:
    """Keeps a mail's parts; returns the Attachment to record."""

    def __init__(self, store: FileStore) -> None:
        self.store = store

    def save(self, part: MailPart) -> Attachment:
        meta: dict[str, object] = {"content_id": part.content_id} if part.content_id else {}
        return self.store.save(part.data, kind=part.kind, filename=part.filename,
                               mime_type=part.mime_type, meta=meta, note_where=IN_THE_MAILBOX)
