"""What a visitor's browser sends, as crm types: messages, button presses, pictures. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.webchat.normalize import BadInput, filename, image_type, inbound, picture
from crm.types import Attachment, Channel

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
VISITOR = "wAbCdEfGhIjKlMnOpQrStUv"


def test_a_message() -> None:
    msg = inbound(VISITOR, {"text": "  Hello\r\nthere\x00 ", "client_id": "c-0123456789",
                            "language": "ru-RU"}, NOW, max_length=100)
    assert msg.channel is Channel.WEBCHAT and msg.sender == VISITOR
    assert msg.external_id == f"{VISITOR}:c-0123456789"  # a retry is the same message
    assert msg.text == "Hello\nthere" and msg.language == "ru" and msg.sent_at == NOW
    assert msg.action is None


def test_a_button_press_is_the_dialogues_action() -> None:
    msg = inbound(VISITOR, {"action": "language:ru", "client_id": "c-0123456789"}, NOW,
                  max_length=100, fallback_language="en")
    assert msg.action == "language:ru" and msg.text == "" and msg.language == "en"
    order = inbound(VISITOR, {"action": "order:A-1042", "client_id": "c-0123456789"}, NOW,
                    max_length=100)
    assert order.action == "order:A-1042"


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"text": "hi"}, "client_id", "invalid"),
    ({"text": "hi", "client_id": "short"}, "client_id", "invalid"),
    ({"text": "hi", "client_id": "has spaces in it"}, "client_id", "invalid"),
    ({"text": " ", "client_id": "c-0123456789"}, "text", "invalid"),
    ({"text": ["a"], "client_id": "c-0123456789"}, "text", "invalid"),
    ({"text": "x" * 101, "client_id": "c-0123456789"}, "text", "too_long"),
    ({"action": "Stop Now", "client_id": "c-0123456789"}, "action", "invalid"),
    ({"action": "help:\n", "client_id": "c-0123456789"}, "action", "invalid"),
    ({"action": 5, "client_id": "c-0123456789"}, "action", "invalid"),
])
def test_bad_input_names_the_field(body: dict[str, object], field: str, code: str) -> None:
    with pytest.raises(BadInput) as info:
        inbound(VISITOR, body, NOW, max_length=100)
    assert info.value.field == field and info.value.code == code
    assert str(info.value).startswith(f"{field}: ")


def test_not_an_object() -> None:
    with pytest.raises(BadInput) as info:
        inbound(VISITOR, ["text"], NOW, max_length=100)
    assert info.value.field == "body"


def test_a_picture_with_its_caption() -> None:
    kept = Attachment(kind="photo", filename="a.png", mime_type="image/png", size=10,
                      path="/x/ab/cd/abcd")
    msg = picture(VISITOR, "c-0123456789", kept, " blue? ", NOW, max_length=100)
    assert msg.attachments == (kept,) and msg.text == "blue?"
    assert msg.external_id == f"{VISITOR}:c-0123456789"


@pytest.mark.parametrize(("data", "expected"), [
    (b"\x89PNG\r\n\x1a\n....", ("image/png", "png")),
    (b"\xff\xd8\xff\xe0....", ("image/jpeg", "jpg")),
    (b"GIF89a....", ("image/gif", "gif")),
    (b"RIFF\0\0\0\0WEBPVP8 ", ("image/webp", "webp")),
    (b"RIFF\0\0\0\0WAVEfmt ", None),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
    (b"%PDF-1.7", None),
    (b"", None),
])
def test_pictures_are_known_by_their_bytes(data: bytes, expected: tuple[str, str] | None) -> None:
    assert image_type(data) == expected


@pytest.mark.parametrize(("raw", "name"), [
    ("Shoes.PNG", "Shoes.png"), ("../../etc/passwd", "passwd.png"),
    ("C:\\Users\\me\\cat.jpeg", "cat.png"), ("a\x00b\nc.png", "a_b_c.png"), ("", "picture.png"),
    ("....", "picture.png"), (None, "picture.png"), ("x" * 300 + ".png", "x" * 100 + ".png"),
])
def test_a_file_name_is_safe_to_keep_and_show(raw: object, name: str) -> None:
    assert filename(raw, "png") == name
