"""Files by SMS: as MMS where Twilio carries it, otherwise as download links in the text. Pure.

Every file of an outbound message comes with a signed, expiring link (`meta["url"]`, made by
crm/files.py FileLinks). Twilio sends MMS to numbers in the US and Canada (+1), at most 10
files and 5 MB in all (the limit is the message's, not each file's): there the links become
MediaUrl, which Twilio fetches. Anywhere else, over the limit, and always through Kannel, the
links are added to the text.
"""

from __future__ import annotations

from collections.abc import Sequence

from crm.config import SmsSettings
from crm.errors import SendRejected
from crm.types import Attachment

MMS_MAX_FILES = 10
MMS_MAX_BYTES = 5 * 1024 * 1024  # every file of the message together
NO_LINKS = ("A file can go by SMS only as a download link, and this message has none (it was "
            "queued without the service's signed links): send the file by another channel.")


def mms_possible(settings: SmsSettings, address: str, files: Sequence[Attachment]) -> bool:
    return (settings.provider == "twilio" and settings.twilio.mms and address.startswith("+1")
            and 0 < len(files) <= MMS_MAX_FILES
            and all(f.size is not None for f in files)
            and sum(f.size or 0 for f in files) <= MMS_MAX_BYTES)


def sms_parts(settings: SmsSettings, address: str, text: str,
              attachments: Sequence[Attachment]) -> tuple[str, list[str]]:
    """(the text to send, the MediaUrls of an MMS); SendRejected when a file cannot go."""
    if not attachments:
        return text, []
    urls = [str(a.meta.get("url") or "") for a in attachments]
    if not all(urls):
        raise SendRejected(NO_LINKS)
    if mms_possible(settings, address, attachments):
        return text, urls
    return " ".join([t for t in (text.strip(),) if t] + urls), []


def attachments_of(raw: Sequence[object]) -> list[Attachment]:
    """Attachments from an outbox payload or a message's JSON."""
    return [a if isinstance(a, Attachment) else Attachment(**a)
            for a in raw if isinstance(a, Attachment | dict)]
