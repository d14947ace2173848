"""Pictures both ways: a visitor's upload is kept in the file store and shown to the team; a
manager's photo reaches the widget as a signed link; `[files] max_bytes` holds, and only real
pictures are taken (by their bytes, not their name)."""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Awaitable, Callable

import aiohttp

from crm.app import _telegram
from crm.models import Message
from crm.types import Attachment, Direction
from tests.channels.webchat.conftest import Chat, running, webchat_settings
from tests.support import procs
from tests.support.telegram_double import GROUP, TelegramDouble, telegram_settings
from tests.support.telegram_fixtures import telegram_server, tg

__all__ = ["telegram_server", "tg"]


def png(width: int = 2, height: int = 2, pad: int = 0) -> bytes:
    """A valid PNG, optionally padded with a private chunk to reach a size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    raw = b"".join(b"\0" + b"\xff\x00\x00" * width for _ in range(height))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if pad:
        body += chunk(b"ruBn", b"\0" * pad)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw)) + \
        chunk(b"IEND", b"")


def form(data: bytes, name: str = "photo.png", text: str = "") -> aiohttp.FormData:
    out = aiohttp.FormData()
    out.add_field("client_id", uuid.uuid4().hex)
    out.add_field("text", text)
    out.add_field("file", data, filename=name, content_type="image/png")
    return out


async def test_a_visitors_picture_is_kept_and_comes_back(chat: Chat) -> None:
    visitor = await chat.visitor()
    picture = png()
    answer = await visitor.call("POST", "/upload", data=form(picture, "shoes.PNG",
                                                             "these, in blue?"))
    assert answer.status == 200, answer.body
    shown = answer.body["message"]
    assert shown["text"] == "these, in blue?"
    [file] = shown["files"]
    assert file["image"] is True and file["name"] == "shoes.png"
    stored = await Message.get(id=shown["id"])
    assert stored.direction is Direction.IN and stored.attachments[0]["kind"] == "photo"
    assert chat.core.files.read(stored.attachments[0]) == picture
    async with chat.http.get(file["url"]) as r:  # the signed link the widget shows
        assert r.status == 200 and await r.read() == picture
        assert r.headers["Content-Type"] == "image/png"


async def test_a_managers_photo_reaches_the_widget(chat: Chat) -> None:
    visitor = await chat.visitor()
    await visitor.listen()
    first = await visitor.says("a photo please")
    customer_id = (await Message.get(id=first["id"])).customer_id
    photo = png(3, 3)
    kept = chat.core.files.save(photo, kind="photo", filename="blue.png",
                                mime_type="image/png")
    sent = await chat.core.conversations.send(customer_id, "here", author=await chat.manager(),
                                              attachments=(kept,))
    got = await visitor.wait_for(lambda: next(
        (m for m in visitor.received if m["id"] == sent.id), None))
    [file] = got["files"]
    assert file["image"] is True and file["url"].startswith(f"{chat.base}/f/")
    async with chat.http.get(file["url"]) as r:
        assert await r.read() == photo
    # A file that was not kept (too large where it came from) shows by name, with no link.
    lost = Attachment(kind="document", filename="big.pdf", meta={"too_large": True})
    other = await chat.core.conversations.send(customer_id, "", author=await chat.manager("Bo"),
                                               attachments=(lost,))
    shown = await visitor.wait_for(lambda: next(
        (m for m in visitor.received if m["id"] == other.id), None))
    assert shown["files"] == [{"name": "big.pdf", "kind": "document", "url": None,
                               "image": False, "size": None}]


async def test_the_size_limit_and_only_pictures(
        chat_with: Callable[..., Awaitable[Chat]]) -> None:
    chat = await chat_with(files={"max_bytes": 2000}, webchat={"visitor_burst": 50})
    visitor = await chat.visitor()
    assert visitor.session["limits"]["bytes"] == 2000
    assert visitor.session["limits"]["bytes_text"] == "2 KB"
    fits = await visitor.call("POST", "/upload", data=form(png(pad=1500)))
    assert fits.status == 200
    big = await visitor.call("POST", "/upload", data=form(png(pad=2500)))
    assert big.status == 413 and big.body["error"] == "too_large" and big.body["limit"] == 2000
    # A page, a script or a PDF named like a picture is no picture.
    for data in (b"<svg onload=alert(1)>", b"%PDF-1.4 ...", b"<html><script>x</script>"):
        refused = await visitor.call("POST", "/upload", data=form(data, "cat.png"))
        assert refused.status == 422 and refused.body["error"] == "not_image"
    empty = aiohttp.FormData()
    empty.add_field("client_id", uuid.uuid4().hex)
    missing = await visitor.call("POST", "/upload", data=empty)
    assert missing.status == 422 and missing.body["field"] == "file"
    assert await Message.filter(direction=Direction.IN).count() == 1


async def test_a_visitors_picture_is_in_their_topic(tg: TelegramDouble, db: str) -> None:
    settings = webchat_settings(db, procs.free_port(), telegram=telegram_settings(tg))
    async with running(settings, extra=[_telegram]) as chat:
        visitor = await chat.visitor()
        await visitor.says("look at this")
        thread = await tg.topic_of("look at this")
        picture = png(4, 4)
        await visitor.call("POST", "/upload", data=form(picture, "socks.png", "the hole"))
        [sent] = await tg.wait_for(lambda: tg.files_to(GROUP, thread))
        assert sent.method == "sendPhoto" and "the hole" in sent.text
