"""A timeline message as the widget shows it: who wrote it, its files as links, a reply's
choices as buttons (never one the web chat cannot do). Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from channels.webchat.render import choices, kept, sender, view
from crm.models import Message
from crm.types import Channel, DeliveryStatus, Direction

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _message(**fields: object) -> Message:
    base: dict[str, object] = {"id": 7, "customer_id": 1, "direction": Direction.OUT,
                               "channel": Channel.WEBCHAT, "text": "hi", "attachments": [],
                               "meta": {}, "author_kind": "manager", "created_at": AT,
                               "delivery_status": DeliveryStatus.SENT, "edited_at": None}
    return Message(**{**base, **fields})


def test_who_wrote_it() -> None:
    assert sender(_message(direction=Direction.IN, author_kind="customer")) == "visitor"
    assert sender(_message(author_kind="manager")) == "team"
    assert sender(_message(author_kind="api")) == "team"
    assert sender(_message(author_kind="bot")) == "bot"
    assert sender(_message(author_kind="system")) == "bot"


def test_choices_become_buttons_except_what_only_telegram_can_do() -> None:
    message = _message(author_kind="bot", meta={"choices": [
        {"action": "talk", "label": "Talk to a manager"},
        {"action": "contact", "label": "Share my phone number", "request": "phone"},
        {"action": "language:ru", "label": "Русский"}, "junk", {"action": "", "label": "x"}]})
    assert choices(message) == [{"action": "talk", "label": "Talk to a manager"},
                                {"action": "language:ru", "label": "Русский"}]
    # A visitor's own message has no buttons, whatever its meta says.
    assert choices(_message(direction=Direction.IN, meta=message.meta)) == []


def test_the_view() -> None:
    message = _message(text="<b>look</b>", edited_at=AT, attachments=[
        {"kind": "photo", "filename": "a.png", "mime_type": "image/png", "size": 10,
         "path": "/files/ab/cd/abcd"},
        {"kind": "document", "filename": "b.svg", "mime_type": "image/svg+xml",
         "path": "/files/ef"},
        {"kind": "document", "filename": "big.pdf", "meta": {"too_large": True}}])
    assert kept(message) == [0, 1]
    shown = view(message, ["https://crm/f/1", "https://crm/f/2", None])
    assert shown == {
        "id": 7, "from": "team", "text": "<b>look</b>", "at": "2026-03-02T10:00:00+00:00",
        "status": "sent", "edited": True, "choices": [],
        "files": [
            {"name": "a.png", "kind": "photo", "url": "https://crm/f/1", "image": True,
             "size": 10},
            # An SVG is a document: it could carry script, so it is never shown as a picture.
            {"name": "b.svg", "kind": "document", "url": "https://crm/f/2", "image": False,
             "size": None},
            {"name": "big.pdf", "kind": "document", "url": None, "image": False, "size": None},
        ]}
