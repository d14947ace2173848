"""A double of Twilio's Messaging API over real HTTP (aiohttp), strict where Twilio is strict.

It checks what our sender posts (Basic auth with the account SID and auth token, a form with To
in E.164, a sender: From or a well-formed MessagingServiceSid, a Body, a StatusCallback URL),
answers like Twilio (201 with a Message resource; 400 with an error code for an invalid number,
a missing sender or an invalid service; 429/500 when told to), and calls our webhooks the way
Twilio does: form posts signed with X-Twilio-Signature (HMAC-SHA1 of the URL and the sorted
parameters, base64, keyed with the auth token; see
https://www.twilio.com/docs/usage/webhooks/webhooks-security). The signature is computed here,
independently of channels/sms/signature.py.

MMS: a send with MediaUrl makes the double fetch each URL, as Twilio does (a URL it cannot
fetch is refused with error 11200), and keep the bytes with the message; Body may then be
empty. Customers' media is served the way Twilio serves it, behind the account's Basic auth
(`add_media`), for inbound webhooks that carry NumMedia and MediaUrl0….
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.support import procs

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SERVICE_SID = re.compile(r"^MG[0-9a-f]{32}$")


def sign(url: str, params: dict[str, str], auth_token: str) -> str:
    data = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
                            .digest()).decode()


def _segments(body: str) -> int:
    # Deliberately rough (Twilio's own count is what matters): ASCII as GSM, else UCS-2.
    gsm = all(32 <= ord(c) < 127 or c == "\n" for c in body)
    units = len(body) if gsm else len(body.encode("utf-16-be")) // 2
    single, part = (160, 153) if gsm else (70, 67)
    return 1 if units <= single else math.ceil(units / part)


@dataclass
class SentSms:
    sid: str
    to: str
    sender: str  # From, or the messaging service SID
    body: str
    status_callback: str
    form: dict[str, str]
    media: list[tuple[str, bytes]] = field(default_factory=list)  # (content type, bytes)


@dataclass
class TwilioDouble:
    account_sid: str = "AC" + "0" * 31 + "1"
    auth_token: str = "twilio-double-auth-token"
    sent: list[SentSms] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    invalid_numbers: set[str] = field(default_factory=set)
    # Answers (status, body) given before accepting, in order: e.g. (429, {...}).
    script: deque[tuple[int, dict[str, Any]]] = field(default_factory=deque)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    port: int = 0
    hosted: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # customers' media
    media_requests: list[dict[str, str]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages/{msid}/Media/{media}",
                           self._media)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        self.port = procs.free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _error(status: int, code: int, message: str) -> web.Response:
        return web.json_response({"code": code, "message": message, "status": status,
                                  "more_info": f"https://www.twilio.com/docs/errors/{code}"},
                                 status=status)

    async def _create(self, request: web.Request) -> web.Response:
        expected = aiohttp.encode_basic_auth(self.account_sid, self.auth_token)
        if request.headers.get("Authorization") != expected \
                or request.match_info["sid"] != self.account_sid:
            return self._error(401, 20003, "Authenticate")
        if request.content_type != "application/x-www-form-urlencoded":
            return self._error(400, 20001, "expected a form post")
        posted = await request.post()
        form = {k: str(v) for k, v in posted.items()}
        media_urls = [str(u) for u in posted.getall("MediaUrl", [])]
        self.requests.append(form)
        if self.script:
            status, body = self.script.popleft()
            return web.json_response(body, status=status)
        to = form.get("To", "")
        if not E164.match(to):
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to in self.invalid_numbers:
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        # Twilio needs a sender: From, or a Messaging Service that picks one from its pool
        # (both together are allowed too: https://www.twilio.com/docs/errors/21603).
        service = form.get("MessagingServiceSid")
        if not form.get("From") and not service:
            return self._error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is "
                                           "required to send a message")
        if service and not SERVICE_SID.match(service):
            return self._error(400, 21705, "The Messaging Service is invalid")
        sender = form.get("From") or service or ""
        if not form.get("Body") and not media_urls:
            return self._error(400, 21602, "Message body is required.")
        if len(media_urls) > 10:
            return self._error(400, 21623, "Too many media URLs: at most 10")
        fetched: list[tuple[str, bytes]] = []
        async with aiohttp.ClientSession() as http:
            for media_url in media_urls:  # Twilio fetches each file from the public URL
                async with http.get(media_url) as got:
                    if got.status != 200:
                        return self._error(400, 11200, f"HTTP retrieval failure: {media_url} "
                                                       f"answered {got.status}")
                    fetched.append((got.content_type, await got.read()))
        if sum(len(d) for _, d in fetched) > 5 * 1024 * 1024:
            return self._error(400, 12300, "Media exceeds the 5 MB limit of an MMS")
        callback = form.get("StatusCallback", "")
        if not callback.startswith(("http://", "https://")):
            return self._error(400, 21609, "Invalid StatusCallback")
        sid = "SM" + uuid.uuid4().hex
        sms = SentSms(sid, to, sender, form.get("Body", ""), callback, form, fetched)
        async with self.changed:
            self.sent.append(sms)
            self.changed.notify_all()
        return web.json_response({
            "sid": sid, "account_sid": self.account_sid, "to": to, "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body", ""), "num_media": str(len(fetched)),
            "status": "queued", "num_segments": str(_segments(form.get("Body", ""))),
            "direction": "outbound-api", "error_code": None, "error_message": None,
        }, status=201)

    async def _media(self, request: web.Request) -> web.Response:
        expected = aiohttp.encode_basic_auth(self.account_sid, self.auth_token)
        self.media_requests.append({"path": request.path,
                                    "auth": request.headers.get("Authorization", "")})
        if request.headers.get("Authorization") != expected:
            return self._error(401, 20003, "Authenticate")
        found = self.hosted.get(request.path)
        if found is None:
            return self._error(404, 20404, "The requested resource was not found")
        return web.Response(body=found[1], content_type=found[0])

    def add_media(self, data: bytes, content_type: str) -> str:
        """Hold a customer's file as Twilio does; returns its MediaUrl."""
        path = (f"/2010-04-01/Accounts/{self.account_sid}/Messages/MM{uuid.uuid4().hex}"
                f"/Media/ME{uuid.uuid4().hex}")
        self.hosted[path] = (content_type, data)
        return self.base_url + path

    async def wait_sent(self, to: str, count: int = 1, timeout: float = 15) -> list[SentSms]:
        def mine() -> list[SentSms]:
            return [s for s in self.sent if s.to == to]

        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(mine()) >= count),
                                   timeout)
        return mine()[:count]

    async def post(self, url: str, params: dict[str, str], *,
                   signature: str | None = None) -> tuple[int, str]:
        """Call one of our webhooks as Twilio does (signed unless `signature` is given)."""
        headers = {"X-Twilio-Signature": signature if signature is not None
                   else sign(url, params, self.auth_token),
                   "User-Agent": "TwilioProxy/1.1"}
        async with aiohttp.ClientSession() as session, session.post(
                url, data=params, headers=headers) as response:
            return response.status, await response.text()

    async def status(self, sms: SentSms, status: str, error_code: str | None = None) -> int:
        params = {"MessageSid": sms.sid, "SmsSid": sms.sid, "MessageStatus": status,
                  "SmsStatus": status, "AccountSid": self.account_sid, "To": sms.to,
                  "From": sms.sender, "ApiVersion": "2010-04-01"}
        if error_code:
            params["ErrorCode"] = error_code
        code, _ = await self.post(sms.status_callback, params)
        return code

    def inbound_params(self, sender: str, to: str, body: str,
                       media: tuple[tuple[bytes, str], ...] = ()) -> dict[str, str]:
        """An inbound webhook's form; with `media` ((bytes, content type), …) an MMS."""
        sid = ("MM" if media else "SM") + uuid.uuid4().hex
        params = {"MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid,
                  "AccountSid": self.account_sid, "From": sender, "To": to, "Body": body,
                  "NumMedia": str(len(media)), "NumSegments": "1", "SmsStatus": "received",
                  "ApiVersion": "2010-04-01", "FromCountry": "US", "ToCountry": "US"}
        for i, (data, content_type) in enumerate(media):
            params[f"MediaUrl{i}"] = self.add_media(data, content_type)
            params[f"MediaContentType{i}"] = content_type
        return params
