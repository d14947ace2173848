"""What a visitor's browser sends, as crm types. Pure: no I/O.

A message is `{"text": "...", "client_id": "..."}`; a button press `{"action": "help",
"client_id": "..."}` (the `action` of one of our Choices), which the customer dialogue reads as
such. `client_id` is the browser's own id for what it sends: a retry of the same call is the
same message (the dedupe key is the visitor's id and it). A picture comes as a file already
kept (crm/files.py) with its caption. Bad input raises `BadInput`, naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from crm.i18n import known_language
from crm.types import Attachment, Channel, InboundMessage

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# Our Choices' actions: an intent, and an argument such as a language or an order number.
_ACTION = re.compile(r"^[a-z_]{1,32}(:[^\s\x00-\x1f]{1,64})?$")
# What the widget shows a picture as, by its first bytes (its name and type are the browser's
# word only).
_IMAGE_MAGIC: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "png"),
    (b"\xff\xd8\xff", 0, "image/jpeg", "jpg"),
    (b"GIF87a", 0, "image/gif", "gif"),
    (b"GIF89a", 0, "image/gif", "gif"),
    (b"WEBP", 8, "image/webp", "webp"),
)


class BadInput(ValueError):
    """What the browser sent cannot be used; the message names the field."""

    def __init__(self, field: str, why: str, code: str = "invalid") -> None:
        super().__init__(f"{field}: {why}")
        self.field = field
        self.code = code


def client_id(value: object) -> str:
    if not isinstance(value, str) or not _CLIENT_ID.match(value):
        raise BadInput("client_id", "8 to 64 letters, digits, '-' or '_' (a new one for each "
                       "message; the same one when a send is retried)")
    return value


def language(value: object) -> str | None:
    return known_language(value) if isinstance(value, str) else None


def _text(body: Mapping[str, Any], max_length: int, required: bool) -> str:
    raw = body.get("text", "")
    if not isinstance(raw, str):
        raise BadInput("text", "must be a string")
    text = raw.replace("\r\n", "\n").replace("\x00", "").strip()
    if required and not text:
        raise BadInput("text", "write something first")
    if len(text) > max_length:
        raise BadInput("text", f"at most {max_length} characters", code="too_long")
    return text


def inbound(visitor: str, body: object, now: datetime, *, max_length: int,
            fallback_language: str | None = None) -> InboundMessage:
    """A message or a button press from `visitor` (a JSON object as sent)."""
    if not isinstance(body, Mapping):
        raise BadInput("body", "a JSON object is expected")
    cid = client_id(body.get("client_id"))
    lang = language(body.get("language")) or fallback_language
    action = body.get("action")
    if action is not None:
        if not isinstance(action, str) or not _ACTION.match(action):
            raise BadInput("action", "not one of the chat's buttons")
        return InboundMessage(Channel.WEBCHAT, f"{visitor}:{cid}", visitor, text="",
                              sent_at=now, language=lang, action=action)
    return InboundMessage(Channel.WEBCHAT, f"{visitor}:{cid}", visitor,
                          text=_text(body, max_length, required=True), sent_at=now,
                          language=lang)


def picture(visitor: str, cid: str, attachment: Attachment, caption: str, now: datetime, *,
            max_length: int, fallback_language: str | None = None) -> InboundMessage:
    """A picture the visitor sent, kept already, with its caption."""
    text = _text({"text": caption}, max_length, required=False)
    return InboundMessage(Channel.WEBCHAT, f"{visitor}:{client_id(cid)}", visitor, text=text,
                          attachments=(attachment,), sent_at=now, language=fallback_language)


def image_type(data: bytes) -> tuple[str, str] | None:
    """(MIME type, extension) of a PNG, JPEG, GIF or WebP by its first bytes; else None."""
    for magic, offset, mime, ext in _IMAGE_MAGIC:
        if data[offset:offset + len(magic)] == magic and (
                mime != "image/webp" or data[:4] == b"RIFF"):
            return mime, ext
    return None


def filename(raw: object, ext: str) -> str:
    """A file name safe to keep and show: no path, no control characters, our extension."""
    name = raw if isinstance(raw, str) else ""
    name = re.sub(r"[\x00-\x1f\x7f/\\]+", "_", name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])
    stem = name.rsplit(".", 1)[0].strip(" .")[:100] or "picture"
    return f"{stem}.{ext}"
