"""A Bot API double: an aiohttp server that answers `/bot<token>/<method>` like Telegram.

The real python-telegram-bot client talks to it over HTTP (`api_base_url`). It is strict where
Telegram is strict, or the tests would prove nothing:

- `getMe` returns a username; parameters arrive form-encoded with nested objects as JSON strings
  (a JSON body is accepted too, as Telegram does);
- flood limits answer 429 with `retry_after`: 30 messages per rolling second per bot, 1 per second
  per private chat, 20 per rolling minute per group (negative chat ids);
- paid broadcasts: a message with `allow_paid_broadcast=true` is not held to the 30 a second
  but to `paid_per_second` (1,000) for every message of the bot together; each costs 0.1 Stars
  (`paid_sent`, `stars_spent`); a message without the flag keeps to the 30;
- 403 for a user who blocked the bot, 400 "message thread not found" for a deleted forum topic,
  400 for bad HTML entities and for texts over 4096 characters;
- `getUpdates` serves the queued updates from `offset` on (confirming the earlier ones, like
  Telegram), long-polls, and answers 409 while a webhook is set;
- files: sendPhoto, sendDocument (and voice, video, audio, animation, video note) take a
  multipart upload or a file id the double issued, of the right type; uploads of photos over
  10 MB and of anything over 50 MB are refused, captions over 1024 characters too; `getFile`
  gives a `file_path` for `/file/bot<token>/<file_path>`, and "file is too big" past 20 MB;
- editMessageText / editMessageCaption only on a message the bot sent in that chat, of that
  kind, and only with a change ("message is not modified" otherwise); 403 for a user who
  blocked the bot since, 400 for a text over 4096 characters.

Tests inject updates (`customer_says`, `manager_says`, …) and await what the bot sent (`wait_for`).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import math
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, cast

import aiohttp
from aiohttp import web

from tests.support import procs

TOKEN = "123456:TEST-token"
BOT_ID = 123456
BOT_USERNAME = "crm_test_bot"
MAX_TEXT = 4096
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                "tg-spoiler", "span", "blockquote", "tg-emoji"}
LIMITED = {"sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendVideo", "sendSticker",
           "sendAudio", "sendAnimation", "sendVideoNote", "copyMessage", "forwardMessage",
           "editMessageText", "editMessageCaption"}
MB = 1024 * 1024
PHOTO_UPLOAD_LIMIT = 10 * MB
UPLOAD_LIMIT = 50 * MB
DOWNLOAD_LIMIT = 20 * MB
CAPTION_LIMIT = 1024
FILE_METHODS = {"sendPhoto": "photo", "sendDocument": "document", "sendVoice": "voice",
                "sendVideo": "video", "sendAudio": "audio", "sendAnimation": "animation",
                "sendVideoNote": "video_note"}


@dataclass
class StoredFile:
    """A file the double holds: uploaded by the bot, or sent by a user in a test."""

    file_id: str
    unique_id: str
    kind: str
    data: bytes
    filename: str | None = None
    mime_type: str | None = None

    @property
    def path(self) -> str:
        return f"{self.kind}s/file_{self.unique_id}"


@dataclass
class Upload:
    filename: str | None
    data: bytes
    content_type: str | None


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass
class Sent:
    """A message the bot sent (or edited), as the double stored it."""

    method: str
    chat_id: int
    message_id: int
    text: str
    thread_id: int | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0
    file: StoredFile | None = None  # what a sendPhoto/sendDocument/… delivered


class _Window:
    """At most `count` events in any rolling `period` seconds."""

    def __init__(self, count: int, period: float) -> None:
        self.count = count
        self.period = period
        self.times: deque[float] = deque()

    def check(self, now: float) -> float:
        """0 if an event may happen now, else seconds until it may."""
        while self.times and self.times[0] <= now - self.period:
            self.times.popleft()
        if len(self.times) < self.count:
            return 0.0
        return self.times[0] + self.period - now

    def note(self, now: float) -> None:
        self.times.append(now)


class _HtmlCheck(HTMLParser):
    """Telegram's HTML parse mode: known tags only, balanced, entities it knows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.error: str | None = None
        self.plain: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.error = self.error or f"unsupported start tag \"{tag}\""
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.error = self.error or f"unmatched end tag \"{tag}\""
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data:
            self.error = self.error or "unexpected < or >"
        self.plain.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            self.error = self.error or f"unsupported entity &{name};"
        self.plain.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.plain.append(html.unescape(f"&#{name};"))


def check_html(text: str) -> str:
    """The visible text of `text` in HTML parse mode, or ApiError 400 like Telegram's."""
    # HTMLParser is lenient about a bare '&' and '<' followed by a space; Telegram is not.
    if re.search(r"&(?!(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", text):
        raise ApiError(400, "Bad Request: can't parse entities: unsupported entity or bare &")
    parser = _HtmlCheck()
    parser.feed(text)
    parser.close()
    if parser.error is None and parser.stack:
        parser.error = f"can't find end tag corresponding to start tag \"{parser.stack[-1]}\""
    if parser.error:
        raise ApiError(400, f"Bad Request: can't parse entities: {parser.error}")
    return "".join(parser.plain)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TelegramDouble:
    """The server and its state. `await double.start()`; `base_url` goes into the config."""

    def __init__(self, token: str = TOKEN, *, per_second: int = 30, per_chat: float = 1.0,
                 per_group_minute: int = 20, paid_per_second: int = 1000) -> None:
        self.token = token
        self.per_second = per_second
        self.paid_per_second = paid_per_second
        self.paid_sent = 0
        # A test can hold sends in flight: past `hold_after` sent messages, requests wait for
        # `release`; one whose client is gone by then (a killed service) is dropped unsent.
        self.hold_after: int | None = None
        self.held = 0
        self.dropped = 0
        self.release = asyncio.Event()
        self.per_chat = per_chat
        self.per_group_minute = per_group_minute
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.sent: list[Sent] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.rejected: list[tuple[str, int, str]] = []  # (method, code, description)
        self.blocked: set[int] = set()
        self.forums: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)  # chat -> topics
        self.deleted_topics: set[tuple[int, int]] = set()
        self.reactions: dict[tuple[int, int], list[str]] = {}
        self.webhook: dict[str, Any] | None = None
        self.changed = asyncio.Condition()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1000)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1))
        self._thread_ids = itertools.count(100)
        self._windows: dict[Any, _Window] = {}
        self.confirmed_offset = 0
        self.files: dict[str, StoredFile] = {}
        self._file_ids = itertools.count(1)
        # (chat, message id) -> ("text" | "media", text or caption) of what the bot sent
        self.bot_messages: dict[tuple[int, int], tuple[str, str]] = {}

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> TelegramDouble:
        app = web.Application(client_max_size=UPLOAD_LIMIT + 4 * MB)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=0.1)
        await self._runner.setup()
        self.port = procs.free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        async with self.changed:
            self.changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    def reset(self) -> None:
        """Forget what happened (between tests; the server keeps running)."""
        self.sent.clear()
        self.calls.clear()
        self.rejected.clear()
        self.blocked.clear()
        self.forums.clear()
        self.deleted_topics.clear()
        self.reactions.clear()
        self.webhook = None
        self._updates.clear()
        self._windows.clear()
        self.files.clear()
        self.bot_messages.clear()
        self.per_second, self.per_chat, self.per_group_minute = 30, 1.0, 20
        self.paid_per_second, self.paid_sent = 1000, 0
        self.hold_after, self.held, self.dropped = None, 0, 0
        self.release = asyncio.Event()

    # --- the HTTP API ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        try:
            params = await self._params(request)
            self.calls.append((method, params))
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            if method in LIMITED and self.hold_after is not None \
                    and len(self.sent) >= self.hold_after and not self.release.is_set():
                self.held += 1
                await self._notify()
                await self.release.wait()
                if request.transport is None or request.transport.is_closing():
                    self.dropped += 1
                    return web.Response(status=499)
            if method in LIMITED:
                self._flood_check(method, params)
            result = await handler(params)
        except ApiError as e:
            self.rejected.append((method, e.code, e.description))
            body: dict[str, Any] = {"ok": False, "error_code": e.code,
                                    "description": e.description}
            if e.retry_after is not None:
                body["parameters"] = {"retry_after": e.retry_after}
            await self._notify()
            return web.json_response(body, status=e.code)
        await self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        out: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    out[key] = value
                else:  # a multipart file part
                    out[key] = Upload(_raw_filename(value), value.file.read(),
                                      value.content_type)
        for key in ("reply_markup", "entities", "reply_parameters", "reaction",
                    "allowed_updates", "link_preview_options"):
            if isinstance(out.get(key), str):
                try:
                    out[key] = json.loads(out[key])
                except json.JSONDecodeError:
                    raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from None
        return out

    def _flood_check(self, method: str, params: dict[str, Any]) -> None:
        chat_id = _int(params, "chat_id")
        now = time.monotonic()
        paid = str(params.get("allow_paid_broadcast", "")).lower() == "true"
        total = self._window("paid", self.paid_per_second, 1.0)
        windows = [total] if paid else [self._window("bot", self.per_second, 1.0), total]
        if chat_id < 0:
            windows.append(self._window(("chat", chat_id), self.per_group_minute, 60.0))
        else:
            windows.append(self._window(("chat", chat_id), 1, self.per_chat))
        wait = max(w.check(now) for w in windows)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        for w in windows:
            w.note(now)
        if paid:
            self.paid_sent += 1

    @property
    def stars_spent(self) -> float:
        return round(self.paid_sent * 0.1, 1)

    def _window(self, key: Any, count: int, period: float) -> _Window:
        w = self._windows.get(key)
        if w is None or (w.count, w.period) != (count, period):
            w = self._windows[key] = _Window(count, period)
        return w

    # --- methods ---------------------------------------------------------------------------

    async def _m_getMe(self, _p: dict[str, Any]) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "CRM", "username": BOT_USERNAME,
                "can_join_groups": True, "can_read_all_group_messages": True,
                "supports_inline_queries": False}

    async def _m_getUpdates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset = int(p.get("offset") or 0)
        limit = int(p.get("limit") or 100)
        timeout = float(p.get("timeout") or 0)
        if offset:
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        async with self.changed:
            while not self._updates and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self.changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
        return self._updates[:limit]

    async def _m_setWebhook(self, p: dict[str, Any]) -> bool:
        if not str(p.get("url", "")).startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: bad webhook: an HTTPS URL must be provided")
        self.webhook = p
        return True

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> bool:
        self.webhook = None
        if str(p.get("drop_pending_updates", "")).lower() == "true":
            self._updates.clear()
        return True

    async def _m_getWebhookInfo(self, _p: dict[str, Any]) -> dict[str, Any]:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    async def _m_sendMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = _int(p, "chat_id")
        text = str(p.get("text", ""))
        visible = check_html(text) if p.get("parse_mode") == "HTML" else text
        if not visible.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        thread_id = self._thread(chat_id, p)
        message_id = next(self._message_ids[chat_id])
        self.sent.append(Sent("sendMessage", chat_id, message_id, text, thread_id,
                              p.get("parse_mode"), p.get("reply_markup"), p, time.monotonic()))
        self.bot_messages[(chat_id, message_id)] = ("text", visible)
        return self._message(chat_id, message_id, text, thread_id)

    async def _send_file(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        kind = FILE_METHODS[method]
        chat_id = _int(p, "chat_id")
        given = p.get(kind)
        if isinstance(given, str) and given.startswith("attach://"):
            given = p.get(given.removeprefix("attach://"))
        if isinstance(given, Upload):
            if not given.data:
                raise ApiError(400, "Bad Request: file must be non-empty")
            if kind == "photo" and len(given.data) > PHOTO_UPLOAD_LIMIT:
                raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS: a photo may be "
                                    "at most 10 MB")
            if len(given.data) > UPLOAD_LIMIT:
                raise ApiError(413, "Request Entity Too Large")
            stored = self.add_file(given.data, kind, given.filename or p.get("filename"),
                                   given.content_type)
        elif isinstance(given, str) and given in self.files:
            stored = self.files[given]
            if stored.kind != kind:
                raise ApiError(400, f"Bad Request: can't use file of type {stored.kind} as "
                                    f"{kind}")
        elif isinstance(given, str) and given:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        else:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        caption = str(p.get("caption") or "")
        visible = check_html(caption) if caption and p.get("parse_mode") == "HTML" else caption
        if utf16_len(visible) > CAPTION_LIMIT:
            raise ApiError(400, "Bad Request: message caption is too long")
        thread_id = self._thread(chat_id, p)
        message_id = next(self._message_ids[chat_id])
        self.sent.append(Sent(method, chat_id, message_id, caption, thread_id,
                              p.get("parse_mode"), p.get("reply_markup"), p, time.monotonic(),
                              stored))
        self.bot_messages[(chat_id, message_id)] = ("media", visible)
        msg = self._message(chat_id, message_id, "", thread_id)
        del msg["text"]
        if caption:
            msg["caption"] = caption
        msg.update(self.attachment(stored))
        return msg

    async def _m_sendPhoto(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("sendPhoto", p)

    async def _m_sendDocument(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("sendDocument", p)

    async def _m_sendVoice(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("sendVoice", p)

    async def _m_sendVideo(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("sendVideo", p)

    async def _m_sendAudio(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("sendAudio", p)

    async def _m_sendAnimation(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("sendAnimation", p)

    async def _m_sendVideoNote(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file("sendVideoNote", p)

    async def _m_getFile(self, p: dict[str, Any]) -> dict[str, Any]:
        stored = self.files.get(str(p.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                "file_size": len(stored.data), "file_path": stored.path}

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.path == path and len(stored.data) <= DOWNLOAD_LIMIT:
                self.calls.append(("download", {"path": path}))
                return web.Response(body=stored.data)
        return web.Response(status=404, text="Not Found")

    def _edited_message(self, p: dict[str, Any], kind: str, new: str) -> tuple[int, int]:
        chat_id, message_id = _int(p, "chat_id"), _int(p, "message_id")
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        found = self.bot_messages.get((chat_id, message_id))
        if found is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if found[0] != kind:
            raise ApiError(400, "Bad Request: there is no text in the message to edit"
                           if kind == "text" else "Bad Request: there is no caption in the "
                                                  "message to edit")
        if found[1] == new:
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                                "content and reply markup are exactly the same as a current "
                                "content and reply markup of the message")
        return chat_id, message_id

    async def _m_editMessageText(self, p: dict[str, Any]) -> dict[str, Any]:
        text = str(p.get("text", ""))
        visible = check_html(text) if p.get("parse_mode") == "HTML" else text
        if not visible.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > MAX_TEXT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        chat_id, message_id = self._edited_message(p, "text", visible)
        self.bot_messages[(chat_id, message_id)] = ("text", visible)
        self.sent.append(Sent("editMessageText", chat_id, message_id, text, None,
                              p.get("parse_mode"), p.get("reply_markup"), p, time.monotonic()))
        return self._message(chat_id, message_id, text, None)

    async def _m_editMessageCaption(self, p: dict[str, Any]) -> dict[str, Any]:
        caption = str(p.get("caption", ""))
        visible = check_html(caption) if p.get("parse_mode") == "HTML" else caption
        if utf16_len(visible) > CAPTION_LIMIT:
            raise ApiError(400, "Bad Request: message caption is too long")
        chat_id, message_id = self._edited_message(p, "media", visible)
        self.bot_messages[(chat_id, message_id)] = ("media", visible)
        self.sent.append(Sent("editMessageCaption", chat_id, message_id, caption, None,
                              p.get("parse_mode"), p.get("reply_markup"), p, time.monotonic()))
        return self._message(chat_id, message_id, caption, None)

    async def _m_setMessageReaction(self, p: dict[str, Any]) -> bool:
        key = (_int(p, "chat_id"), _int(p, "message_id"))
        self.reactions[key] = [r.get("emoji", "") for r in p.get("reaction") or []]
        return True

    async def _m_answerCallbackQuery(self, _p: dict[str, Any]) -> bool:
        return True

    async def _m_createForumTopic(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = _int(p, "chat_id")
        name = str(p.get("name", ""))
        if chat_id >= 0:
            raise ApiError(400, "Bad Request: the chat is not a forum")
        if not 1 <= len(name) <= 128:
            raise ApiError(400, "Bad Request: invalid topic name")
        thread_id = next(self._thread_ids)
        self.forums[chat_id][thread_id] = {"name": name, "closed": False}
        return {"message_thread_id": thread_id, "name": name, "icon_color": 7322096}

    async def _m_closeForumTopic(self, p: dict[str, Any]) -> bool:
        self._topic(p)["closed"] = True
        return True

    async def _m_reopenForumTopic(self, p: dict[str, Any]) -> bool:
        self._topic(p)["closed"] = False
        return True

    async def _m_editForumTopic(self, p: dict[str, Any]) -> bool:
        topic = self._topic(p)
        if p.get("name"):
            topic["name"] = p["name"]
        return True

    def _topic(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id, thread_id = _int(p, "chat_id"), _int(p, "message_thread_id")
        topic = self.forums.get(chat_id, {}).get(thread_id)
        if topic is None or (chat_id, thread_id) in self.deleted_topics:
            raise ApiError(400, "Bad Request: TOPIC_ID_INVALID")
        return topic

    def _thread(self, chat_id: int, p: dict[str, Any]) -> int | None:
        if chat_id > 0 and chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        raw = p.get("message_thread_id")
        if raw in (None, ""):
            return None
        thread_id = int(raw)
        if (chat_id, thread_id) in self.deleted_topics or thread_id not in self.forums.get(
                chat_id, {}):
            raise ApiError(400, "Bad Request: message thread not found")
        return thread_id

    def _message(self, chat_id: int, message_id: int, text: str,
                 thread_id: int | None) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "message_id": message_id, "date": int(time.time()), "text": text,
            "chat": _chat(chat_id),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "CRM",
                     "username": BOT_USERNAME}}
        if thread_id is not None:
            msg["message_thread_id"] = thread_id
            msg["is_topic_message"] = True
        return msg

    # --- helpers for tests -----------------------------------------------------------------

    def add_file(self, data: bytes, kind: str, filename: str | None = None,
                 mime_type: str | None = None) -> StoredFile:
        """Hold a file (as if a user had uploaded it); returns it with its new file id."""
        n = next(self._file_ids)
        stored = StoredFile(f"F{kind[:3].upper()}{n:06d}x{len(data)}", f"u{n:08d}", kind, data,
                            filename, mime_type)
        self.files[stored.file_id] = stored
        return stored

    def attachment(self, stored: StoredFile) -> dict[str, Any]:
        """The fields of a message that carries `stored` (`photo` is a list of sizes)."""
        if stored.kind == "photo":
            return {"photo": [{"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                               "width": 800, "height": 600, "file_size": len(stored.data)}]}
        media: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                                 "file_size": len(stored.data)}
        if stored.filename and stored.kind in ("document", "audio", "video", "animation"):
            media["file_name"] = stored.filename
        if stored.mime_type:
            media["mime_type"] = stored.mime_type
        if stored.kind in ("voice", "video", "audio", "video_note", "animation"):
            media["duration"] = 3
        if stored.kind in ("video", "animation"):
            media.update(width=640, height=480)
        if stored.kind == "video_note":
            media["length"] = 240
        return {stored.kind: media}

    def file_message(self, kind: str, data: bytes, filename: str | None = None,
                     mime_type: str | None = None, caption: str = "") -> dict[str, Any]:
        """The `extra` of a message from a user who sends a file: `customer_says(u, **it)`."""
        extra = self.attachment(self.add_file(data, kind, filename, mime_type))
        if caption:
            extra["caption"] = caption
        return extra

    def files_to(self, chat_id: int, thread_id: int | None = None) -> list[Sent]:
        return [s for s in self.sent if s.file is not None and s.chat_id == chat_id
                and (thread_id is None or s.thread_id == thread_id)]

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def inject(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates (assigns its update_id)."""
        update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())
        return update

    def pending_updates(self) -> list[int]:
        return [u["update_id"] for u in self._updates if u["update_id"] >= self.confirmed_offset]

    def message(self, chat_id: int, user: dict[str, Any], text: str = "", *,
                thread_id: int | None = None, reply_to: dict[str, Any] | None = None,
                **extra: Any) -> dict[str, Any]:
        """A `message` object from `user` in `chat_id` (a command gets its bot_command entity)."""
        msg: dict[str, Any] = {"message_id": next(self._message_ids[chat_id]),
                               "date": int(time.time()), "chat": _chat(chat_id, user),
                               "from": user, **extra}
        if text:
            msg["text"] = text
            if text.startswith("/"):
                msg["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(text.split()[0])}]
        if thread_id is not None:
            msg["message_thread_id"] = thread_id
            msg["is_topic_message"] = True
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        return msg

    def customer_says(self, user: dict[str, Any], text: str = "", **extra: Any) -> dict[str, Any]:
        """A customer writes the bot privately; returns the queued update."""
        return self.inject({"message": self.message(user["id"], user, text, **extra)})

    def manager_says(self, chat_id: int, user: dict[str, Any], text: str,
                     thread_id: int | None = None, **extra: Any) -> dict[str, Any]:
        return self.inject({"message": self.message(chat_id, user, text, thread_id=thread_id,
                                                    **extra)})

    def press(self, user: dict[str, Any], data: str) -> dict[str, Any]:
        """The user presses an inline button with `data` under a message of the bot."""
        return self.inject({"callback_query": {
            "id": f"cb{next(self._update_ids)}", "from": user, "chat_instance": "ci",
            "data": data, "message": self._message(user["id"], 1, "menu", None)}})

    def edit(self, update: dict[str, Any], text: str) -> dict[str, Any]:
        original = dict(update["message"])
        original["text"] = text
        original["edit_date"] = int(time.time()) + 1
        original.pop("entities", None)
        if text.startswith("/"):
            original["entities"] = [{"type": "bot_command", "offset": 0,
                                     "length": len(text.split()[0])}]
        return self.inject({"edited_message": original})

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        self.deleted_topics.add((chat_id, thread_id))

    def sent_to(self, chat_id: int, thread_id: int | None = None) -> list[Sent]:
        return [s for s in self.sent if s.method == "sendMessage" and s.chat_id == chat_id
                and (thread_id is None or s.thread_id == thread_id)]

    def topic_text(self, thread_id: int | None = None, chat_id: int | None = None) -> str:
        """Everything the bot wrote in the managers' group (or one topic of it): texts and
        captions."""
        group = GROUP if chat_id is None else chat_id
        return "\n".join(s.text for s in self.sent if s.chat_id == group
                         and (thread_id is None or s.thread_id == thread_id))

    async def topic_of(self, text: str, chat_id: int | None = None) -> int:
        """The topic in which the bot showed `text` (a customer's message), once it did."""
        group = GROUP if chat_id is None else chat_id
        await self.wait_for(lambda: any(text in s.text and s.thread_id is not None
                                         for s in self.sent if s.chat_id == group))
        return next(s.thread_id for s in self.sent
                    if s.chat_id == group and text in s.text and s.thread_id is not None)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 20) -> Any:
        """Wait until `predicate()` is truthy (re-checked whenever the double is called)."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout)
        return predicate()

    async def wait_sent(self, chat_id: int, count: int = 1, *, thread_id: int | None = None,
                        timeout: float = 20) -> list[Sent]:
        await self.wait_for(lambda: len(self.sent_to(chat_id, thread_id)) >= count, timeout)
        return self.sent_to(chat_id, thread_id)

    async def wait_consumed(self, timeout: float = 20) -> None:
        """Wait until the client confirmed every queued update (called getUpdates past them)."""
        await self.wait_for(lambda: not self.pending_updates(), timeout)

    def redeliver(self, update: dict[str, Any]) -> None:
        """Serve an update again, as Telegram does when its receipt was never confirmed."""
        self._updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())

    async def post_webhook(self, update: dict[str, Any], secret: str | None,
                           url: str | None = None) -> int:
        """Deliver an update to the webhook the bot set, as Telegram would; returns the status."""
        assert self.webhook is not None, "the bot has not set a webhook"
        update = {"update_id": next(self._update_ids), **update}
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with aiohttp.ClientSession() as session, session.post(
                url or self.webhook["url"], json=update, headers=headers) as resp:
            return resp.status


def user(user_id: int, first_name: str = "Ann", language_code: str | None = "en",
         username: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code:
        out["language_code"] = language_code
    if username:
        out["username"] = username
    return out


def _chat(chat_id: int, user: dict[str, Any] | None = None) -> dict[str, Any]:
    if chat_id < 0:
        return {"id": chat_id, "type": "supergroup", "title": "Team", "is_forum": True}
    chat: dict[str, Any] = {"id": chat_id, "type": "private"}
    if user:
        chat["first_name"] = user.get("first_name", "")
    return chat


def _int(p: dict[str, Any], key: str) -> int:
    try:
        return int(p[key])
    except (KeyError, ValueError, TypeError):
        raise ApiError(400, f"Bad Request: {key} is required") from None


# --- the service against the double (used by tests/channels/telegram and tests/bot) -------------

GROUP = -1001234567890


def telegram_settings(double: TelegramDouble, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"token": double.token, "api_base_url": double.base_url,
                              "managers_chat_id": GROUP, "poll_timeout": 2}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def _raw_filename(part: Any) -> str | None:
    """The file name as the part's header gives it. Telegram keeps it verbatim (a name sent
    percent-encoded shows so to the customer), where aiohttp's reader would decode it."""
    header = part.headers.get("Content-Disposition", "") if part.headers else ""
    found = re.search(r'filename="((?:[^"\\]|\\.)*)"', header)
    if found is None:
        return cast(str | None, part.filename)
    return re.sub(r"\\(.)", r"\1", found.group(1))
