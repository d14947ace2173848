"""A timeline message as the widget shows it: who wrote it, its text, its pictures and files
(signed download links), and the choices of a channel-neutral reply as buttons. Pure.

The widget puts every value in the page as text (textContent), never as HTML; choices that ask
for what only another channel can give (Telegram's share-my-number button) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from crm.files import is_kept
from crm.models import Message
from crm.types import Choice, Direction

MAX_CHOICES = 12


def sender(message: Message) -> str:
    """visitor, team (a person: a manager, the shop through the API) or bot."""
    if message.direction is Direction.IN:
        return "visitor"
    return "bot" if message.author_kind in ("bot", "system") else "team"


def choices(message: Message) -> list[dict[str, str]]:
    raw = message.meta.get("choices") if message.direction is Direction.OUT else None
    if not isinstance(raw, list):
        return []
    shown = [Choice.from_json(c) for c in raw if isinstance(c, dict)]
    return [{"action": c.action, "label": c.label} for c in shown
            if c.request is None and c.action and c.label][:MAX_CHOICES]


def view(message: Message, urls: Sequence[str | None]) -> dict[str, Any]:
    """`urls`: a download link for each attachment whose bytes are kept (None otherwise)."""
    files = []
    for attachment, url in zip(message.attachments, urls, strict=False):
        mime = str(attachment.get("mime_type") or "")
        files.append({
            "name": str(attachment.get("filename") or attachment.get("kind") or "file"),
            "kind": str(attachment.get("kind") or "file"), "url": url,
            "image": bool(url) and mime.startswith("image/") and mime != "image/svg+xml",
            "size": attachment.get("size") if isinstance(attachment.get("size"), int) else None,
        })
    return {
        "id": message.id, "from": sender(message), "text": message.text,
        "at": message.created_at.astimezone(UTC).isoformat(),
        "status": message.delivery_status.value, "edited": message.edited_at is not None,
        "files": files, "choices": choices(message),
    }


def kept(message: Message) -> list[int]:
    """The places of the message's attachments whose bytes we have."""
    return [i for i, a in enumerate(message.attachments) if is_kept(a)]
