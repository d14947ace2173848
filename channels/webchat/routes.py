"""The web chat's HTTP side, under /webchat: what the widget calls.

- `POST /session`: a new visitor and their token, or the visitor of a token, renewed; with the
  widget's texts in the visitor's language and what the chat offers.
- `POST /messages`: a message or a button press; `POST /upload`: a picture (multipart).
- `GET /events?token=`: server-sent events: `ready`, then `message` for each message of the
  visitor's (a reply, a bot answer, their own from another tab, an edit).
- `GET /history[?before=ID]`: the visitor's messages, newest page first; `POST /read`: the
  page showed messages up to an id.
- `POST /contact`, `POST /contact/confirm`: an email or a phone number for answers there,
  linked once the code sent to it comes back (crm/verification.py).

Every call but the session's first carries the visitor's token (`Authorization: Bearer`, or
`?token=` where a browser cannot set headers: the event stream), checked each time. Calls are
limited per visitor and per client address; what arrives goes to the customer dialogue, like
every channel's messages, and is committed before the answer.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import BodyPartReader, web
from aiohttp_sse import EventSourceResponse, sse_response

from channels.webchat import normalize, render
from channels.webchat.hub import Hub, Stream
from channels.webchat.normalize import BadInput
from channels.webchat.tokens import VisitorTokens, new_visitor_id
from crm.errors import Conflict, CrmError
from crm.i18n import pick_language, size, texts
from crm.links import LinkExpired, LinkTampered
from crm.live import LiveEvent
from crm.models import Identity, Message
from crm.ratelimit import RateLimiter
from crm.services import Core
from crm.types import Channel, DeliveryStatus, Direction, InboundMessage
from crm.verification import CheckRefused, CheckRules

log = structlog.get_logger(__name__)

MAX_JSON = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refused(Exception):
    """An answer other than 200: its status, a code the widget words, and the detail."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.extra = extra


@dataclass(frozen=True, slots=True)
class Caller:
    visitor: str
    remote: str
    language: str


class Webchat:
    def __init__(self, core: Core, hub: Hub, tokens: VisitorTokens) -> None:
        self.core = core
        self.hub = hub
        self.tokens = tokens
        self.settings = core.settings.webchat
        s = self.settings
        self.per_visitor = RateLimiter(s.visitor_rate_per_minute, s.visitor_burst)
        self.per_ip = RateLimiter(s.ip_rate_per_minute, s.ip_burst)
        self.rules = CheckRules(s.code_minutes, s.code_attempts, s.codes_per_hour)
        self._open: set[EventSourceResponse] = set()

    def mount(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/session", self.session)
        r.add_post("/messages", self.messages)
        r.add_post("/upload", self.upload)
        r.add_get("/events", self.events)
        r.add_get("/history", self.history)
        r.add_post("/read", self.read)
        r.add_post("/contact", self.contact)
        r.add_post("/contact/confirm", self.confirm)
        app.on_shutdown.append(self._close_streams)

    async def _close_streams(self, _app: web.Application) -> None:
        """On shutdown: end the open streams, or the server would wait for browsers to go."""
        for resp in tuple(self._open):
            resp.stop_streaming()

    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as e:
            headers = {"Retry-After": str(e.extra["retry_after"])} \
                if "retry_after" in e.extra else None
            return web.json_response({"error": e.code, "detail": str(e), **e.extra},
                                     status=e.status, headers=headers)
        except BadInput as e:
            return web.json_response({"error": e.code, "field": e.field, "detail": str(e)},
                                     status=422)
        except LinkExpired:
            return web.json_response({"error": "expired", "detail": "the visitor's token has "
                                      "expired: start a new session"}, status=401)
        except LinkTampered:
            log.warning("webchat.token_refused", path=request.path, remote=request.remote)
            return web.json_response({"error": "token", "detail": "not a token of ours"},
                                     status=403)
        except Conflict as e:  # an erased customer writing again, …
            return web.json_response({"error": "conflict", "detail": str(e)}, status=409)

    # --- who is calling --------------------------------------------------------------------

    def _limit(self, limiter: RateLimiter, key: str, cost: float = 1.0) -> None:
        wait = limiter.take(key, cost)
        if wait > 0:
            raise Refused(429, "rate", "too many requests: try again later",
                          retry_after=max(1, math.ceil(wait)))

    def _language(self, request: web.Request, body: dict[str, Any] | None = None) -> str:
        default = self.core.settings.bot.default_language
        given = (body or {}).get("language") or request.query.get("language")
        if isinstance(given, str) and normalize.language(given):
            return pick_language(given, default)
        for part in request.headers.get("Accept-Language", "").split(","):
            code = normalize.language(part.split(";")[0].strip())
            if code:
                return code
        return default

    async def _caller(self, request: web.Request, body: dict[str, Any] | None = None, *,
                      cost: float = 1.0) -> Caller:
        remote = request.remote or "unknown"
        self._limit(self.per_ip, remote)
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " \
            else request.query.get("token", "")
        visitor = await self.tokens.visitor(token)
        if cost:
            self._limit(self.per_visitor, visitor, cost)
        return Caller(visitor, remote, self._language(request, body))

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > MAX_JSON:
            raise Refused(413, "too_large", f"at most {MAX_JSON} bytes")
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(MAX_JSON + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_JSON:
                raise Refused(413, "too_large", f"at most {MAX_JSON} bytes")
        raw = b"".join(chunks)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise BadInput("body", "not JSON") from None
        if not isinstance(body, dict):
            raise BadInput("body", "a JSON object is expected")
        return body

    async def _identity(self, visitor: str) -> Identity | None:
        return await Identity.filter(channel=Channel.WEBCHAT, address=visitor).first()

    async def _view(self, message: Message) -> dict[str, Any]:
        urls: list[str | None] = [None] * len(message.attachments)
        for index in render.kept(message):
            urls[index] = await self.core.links.url(message.id, index)
        return render.view(message, urls)

    # --- the session -----------------------------------------------------------------------

    async def session(self, request: web.Request) -> web.Response:
        """With a token (Authorization): its visitor, renewed; without: a new visitor."""
        body = await self._body(request)
        if request.headers.get("Authorization"):
            visitor = (await self._caller(request, body, cost=0)).visitor
        else:
            self._limit(self.per_ip, request.remote or "unknown", 5)  # new ones cost more
            visitor = new_visitor_id()
        language = self._language(request, body)
        issued, expires = await self.tokens.issue(visitor)
        senders = set(self.core.dispatcher.channels)
        return web.json_response({
            "token": issued, "expires_at": expires.isoformat(), "language": language,
            "known": await self._identity(visitor) is not None,
            "texts": texts("webchat_", language),
            "contact": {"email": Channel.EMAIL in senders, "sms": Channel.SMS in senders},
            "limits": {"text": self.settings.max_text_length,
                       "bytes": self.core.files.max_bytes,
                       "bytes_text": size(self.core.files.max_bytes, language)}})

    # --- what the visitor sends ------------------------------------------------------------

    async def messages(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        caller = await self._caller(request, body)
        msg = normalize.inbound(caller.visitor, body, self.core.clock(),
                                max_length=self.settings.max_text_length,
                                fallback_language=caller.language)
        return await self._receive(caller, msg)

    async def _receive(self, caller: Caller, msg: InboundMessage) -> web.Response:
        result = await self.core.inbox.receive(msg)
        self.hub.bind(caller.visitor, result.customer_id, result.identity_id)
        message = await Message.get(id=result.message_id)
        log.info("webchat.received", message_id=message.id, customer_id=result.customer_id,
                 duplicate=result.duplicate)
        return web.json_response({"message": await self._view(message)})

    async def upload(self, request: web.Request) -> web.Response:
        caller = await self._caller(request, cost=3)
        limit = self.core.files.max_bytes
        if request.content_length is not None and request.content_length > limit + MAX_JSON:
            raise Refused(413, "too_large", f"at most {limit} bytes", limit=limit)
        if not request.content_type.startswith("multipart/"):
            raise BadInput("file", "send the picture as multipart/form-data")
        fields: dict[str, str] = {}
        data: bytes | None = None
        name = ""
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadInput("body", "a nested multipart body")
            if part.name == "file":
                name = part.filename or ""
                data = await _read_at_most(part, limit)
                if data is None:
                    raise Refused(413, "too_large", f"at most {limit} bytes", limit=limit)
            elif part.name in ("text", "client_id", "language"):
                value = await _read_at_most(part, MAX_JSON)
                if value is None:
                    raise Refused(413, "too_large", f"{part.name}: at most {MAX_JSON} bytes")
                fields[part.name] = value.decode("utf-8", "replace")
        if data is None:
            raise BadInput("file", "no file was sent")
        kind = normalize.image_type(data)
        if kind is None:
            raise BadInput("file", "only pictures: JPEG, PNG, GIF or WebP", code="not_image")
        mime, ext = kind
        cid = normalize.client_id(fields.get("client_id"))
        attachment = await asyncio.to_thread(
            self.core.files.save, data, kind="photo", filename=normalize.filename(name, ext),
            mime_type=mime)
        msg = normalize.picture(caller.visitor, cid, attachment, fields.get("text", ""),
                                self.core.clock(), max_length=self.settings.max_text_length,
                                fallback_language=normalize.language(fields.get("language"))
                                or caller.language)
        return await self._receive(caller, msg)

    # --- what the visitor reads ------------------------------------------------------------

    async def history(self, request: web.Request) -> web.Response:
        caller = await self._caller(request, cost=0)
        identity = await self._identity(caller.visitor)
        if identity is None:
            return web.json_response({"messages": [], "more": False})
        raw = request.query.get("before", "")
        query = Message.filter(identity_id=identity.id,
                               direction__in=[Direction.IN, Direction.OUT])
        if raw:
            if not raw.isdigit() or len(raw) > 18:
                raise BadInput("before", "a message id")
            query = query.filter(id__lt=int(raw))
        page = self.settings.history_page
        rows = await query.order_by("-id").limit(page + 1)
        shown = list(reversed(rows[:page]))
        for message in shown:  # what a page of theirs shows has reached them
            await self._delivered(message)
        return web.json_response({"messages": [await self._view(m) for m in shown],
                                  "more": len(rows) > page})

    async def _delivered(self, message: Message) -> None:
        if message.direction is Direction.OUT and message.external_id \
                and message.delivery_status is DeliveryStatus.SENT:
            await self.core.outbox.record_delivery(Channel.WEBCHAT, message.external_id,
                                                   DeliveryStatus.DELIVERED)

    async def read(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        caller = await self._caller(request, body, cost=0)
        up_to = body.get("up_to")
        if not isinstance(up_to, int) or isinstance(up_to, bool) or up_to < 1:
            raise BadInput("up_to", "the id of the last message the page shows")
        identity = await self._identity(caller.visitor)
        count = 0
        if identity is not None:
            unread = await Message.filter(
                identity_id=identity.id, direction=Direction.OUT, id__lte=up_to,
                delivery_status__in=[DeliveryStatus.SENT, DeliveryStatus.DELIVERED],
            ).exclude(external_id=None).order_by("id").limit(100)
            for message in unread:
                await self.core.outbox.record_delivery(Channel.WEBCHAT, str(message.external_id),
                                                       DeliveryStatus.READ)
                count += 1
        return web.json_response({"read": count})

    async def events(self, request: web.Request) -> web.StreamResponse:
        caller = await self._caller(request, cost=0)
        if self.hub.count(caller.visitor) >= self.settings.streams_per_visitor or \
                self.hub.count_remote(caller.remote) >= self.settings.streams_per_ip:
            raise Refused(429, "streams", "too many open chats: close a tab", retry_after=10)
        identity = await self._identity(caller.visitor)
        stream = self.hub.open(caller.visitor, caller.remote,
                               identity.customer_id if identity else None,
                               identity.id if identity else None)
        try:
            async with sse_response(request, headers={"Cache-Control": "no-store",
                                                      "X-Accel-Buffering": "no"},
                                    ping_interval=self.settings.ping_seconds) as resp:
                self._open.add(resp)
                gone = asyncio.ensure_future(resp.wait())  # ends when the browser leaves
                try:
                    await resp.send("{}", event="ready")
                    while True:
                        got = asyncio.ensure_future(stream.queue.get())
                        done, _ = await asyncio.wait({got, gone},
                                                     return_when=asyncio.FIRST_COMPLETED)
                        if got not in done:
                            got.cancel()
                            break
                        message = await self._for(stream, got.result())
                        if message is not None:
                            await resp.send(json.dumps(await self._view(message)),
                                            event="message")
                            await self._delivered(message)
                except ConnectionResetError:
                    pass  # the browser left while we wrote
                finally:
                    gone.cancel()
                    self._open.discard(resp)
            return resp
        finally:
            self.hub.close(stream)

    async def _for(self, stream: Stream, event: LiveEvent) -> Message | None:
        """The message the event is about, if the stream's visitor is to see it now: a
        message to them that was just sent or edited, or theirs from another tab."""
        wanted = (event.kind == "delivery" and event.status == DeliveryStatus.SENT.value) or \
            (event.kind == "message" and event.status == Direction.IN.value) or \
            event.kind == "edited"
        if not wanted or event.message_id is None or stream.identity_id is None:
            return None
        message = await Message.get_or_none(id=event.message_id)
        if message is None or message.channel is not Channel.WEBCHAT \
                or message.identity_id != stream.identity_id:
            return None
        if event.kind == "edited" and message.delivery_status in (
                DeliveryStatus.QUEUED, DeliveryStatus.FAILED):
            return None  # not theirs yet: it goes as edited when it is sent
        return message

    # --- an address for answers ------------------------------------------------------------

    async def contact(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        caller = await self._caller(request, body, cost=2)
        identity = await self._identity(caller.visitor)
        if identity is None:
            raise Refused(409, "write_first", "write a message first")
        address = body.get("address")
        if not isinstance(address, str):
            raise BadInput("address", "an email address or a phone number")
        available = {c for c in self.core.dispatcher.channels
                     if c in (Channel.EMAIL, Channel.SMS)}
        try:
            check = await self.core.checks.request(
                identity.customer_id, address, available=available, language=caller.language,
                rules=self.rules, default_region=self.core.settings.sms.default_region)
        except CheckRefused as e:
            raise Refused(429 if e.reason == "too_many" else 422, e.reason, str(e)) from None
        return web.json_response({"channel": check.channel.value, "address": check.address})

    async def confirm(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        caller = await self._caller(request, body)
        identity = await self._identity(caller.visitor)
        code = body.get("code")
        if identity is None:
            raise Refused(409, "write_first", "write a message first")
        if not isinstance(code, str) or not code.strip():
            raise BadInput("code", "the code we sent")
        try:
            linked = await self.core.checks.confirm(identity.customer_id, code, self.rules)
        except CheckRefused as e:
            raise Refused(422, e.reason, str(e), left=e.attempts_left) from None
        except CrmError as e:
            raise Refused(409, "conflict", str(e)) from None
        self.hub.bind(caller.visitor, linked.customer_id, identity.id)
        return web.json_response({"channel": linked.channel.value, "address": linked.address})


async def _read_at_most(part: BodyPartReader, limit: int) -> bytes | None:
    """The part's bytes, or None past `limit` (reading stops there: a huge upload never fills
    the memory)."""
    chunks: list[bytes] = []
    total = 0
    while chunk := await part.read_chunk(64 * 1024):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
