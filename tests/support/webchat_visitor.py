"""A web chat visitor over real HTTP, as the widget is: a session, POSTs, and the event stream
read line by line (server-sent events). For the endpoint tests, the dialogue test and the
benchmark."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: Any


@dataclass
class Visitor:
    http: aiohttp.ClientSession
    base: str  # the service, e.g. http://127.0.0.1:8123
    origin: str | None = None  # the page the visitor is on (sent as Origin), None: same site
    language: str = "en"
    token: str = ""
    session: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _reader: asyncio.Task[None] | None = None
    _stream: aiohttp.ClientResponse | None = None

    @property
    def visitor_id(self) -> str:
        """The id the token names (its payload is readable: crm/links.py)."""
        payload = self.token.split(".")[0]
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()

    def headers(self, token: str | None = None) -> dict[str, str]:
        out = {} if self.origin is None else {"Origin": self.origin}
        token = self.token if token is None else token
        if token:
            out["Authorization"] = f"Bearer {token}"
        return out

    async def call(self, method: str, path: str, body: Any = None, *,
                   token: str | None = None, data: Any = None,
                   headers: dict[str, str] | None = None) -> Answer:
        async with self.http.request(method, f"{self.base}/webchat{path}",
                                     json=body if data is None else None, data=data,
                                     headers={**self.headers(token), **(headers or {})}) as r:
            try:
                payload = await r.json(content_type=None)
            except ValueError:
                payload = {}
            return Answer(r.status, payload if isinstance(payload, dict) else {}, r.headers)

    async def start(self) -> Visitor:
        answer = await self.call("POST", "/session", {"language": self.language})
        assert answer.status == 200, answer.body
        self.session = answer.body
        self.token = answer.body["token"]
        return self

    async def says(self, text: str, client_id: str | None = None) -> dict[str, Any]:
        answer = await self.call("POST", "/messages", {
            "text": text, "client_id": client_id or uuid.uuid4().hex,
            "language": self.language})
        assert answer.status == 200, answer.body
        return answer.body["message"]  # type: ignore[no-any-return]

    async def presses(self, action: str) -> dict[str, Any]:
        answer = await self.call("POST", "/messages", {
            "action": action, "client_id": uuid.uuid4().hex, "language": self.language})
        assert answer.status == 200, answer.body
        return answer.body["message"]  # type: ignore[no-any-return]

    async def history(self, before: int | None = None) -> dict[str, Any]:
        answer = await self.call("GET", "/history" + (f"?before={before}" if before else ""))
        assert answer.status == 200, answer.body
        return answer.body

    # --- the event stream ------------------------------------------------------------------

    async def listen(self) -> None:
        """Open the event stream and wait for its `ready`."""
        self._stream = await self.http.get(
            f"{self.base}/webchat/events", params={"token": self.token},
            headers={k: v for k, v in self.headers().items() if k == "Origin"},
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
        assert self._stream.status == 200, await self._stream.text()
        self._reader = asyncio.create_task(self._read(self._stream))
        await self.wait_for(lambda: any(kind == "ready" for kind, _, _ in self.events))

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        kind, data = "message", []
        try:
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    payload = json.loads("\n".join(data))
                    async with self.changed:
                        self.events.append((kind, payload, time.perf_counter()))
                        self.changed.notify_all()
                    kind, data = "message", []
        except (aiohttp.ClientError, asyncio.CancelledError):
            pass

    @property
    def received(self) -> list[dict[str, Any]]:
        """The messages the stream brought, in order."""
        return [payload for kind, payload, _ in self.events if kind == "message"]

    async def wait_for(self, ready: Any, timeout: float = 15) -> Any:
        async with self.changed:
            return await asyncio.wait_for(self.changed.wait_for(ready), timeout)

    async def replies(self, count: int, timeout: float = 15) -> list[dict[str, Any]]:
        """The first `count` messages to the visitor (not their own) the stream brought."""
        def got() -> list[dict[str, Any]] | None:
            theirs = [m for m in self.received if m["from"] != "visitor"]
            return theirs[:count] if len(theirs) >= count else None

        return await self.wait_for(got, timeout)  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._stream is not None:
            self._stream.close()
