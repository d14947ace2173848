"""python-telegram-bot's HTTP requests over aiohttp instead of its default httpx.

PTB lets a bot bring its own `BaseRequest`. httpx's connection pool scans every pooled
connection on each request (whether it expired, whether its socket is readable): with a pool
big enough for paid broadcasts (tens of connections in flight) that cost about 4 ms of CPU a
message, so a bot could not send more than a hundred or so a second; aiohttp (the library our
HTTP server already runs on) sends the same messages for about a seventh of that. What PTB
expects of a request is kept: form fields, multipart uploads, its four timeouts, proxies from
the environment, `TimedOut` and `NetworkError`.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


def _value(given: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(given, DefaultValue) else given


def _sum(*parts: float | None) -> float | None:
    """A timeout made of several waits; None (no limit) if any of them has none."""
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


class AiohttpRequest(BaseRequest):
    """One aiohttp session with a pool of `pool_size` connections to the Bot API."""

    __slots__ = ("_connect", "_media_write", "_pool", "_pool_size", "_read", "_session",
                 "_write")

    def __init__(self, pool_size: int = 64, *, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0,
                 media_write_timeout: float | None = 20.0) -> None:
        self._pool_size = pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            # Made here, not in __init__: a session belongs to the running loop.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                trust_env=True)  # HTTPS_PROXY and friends, as httpx honours them

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        data: Any = request_data.json_parameters if request_data else None
        if files:
            form = aiohttp.FormData()
            for name, value in (data or {}).items():
                form.add_field(name, value)
            for name, (filename, content, mime) in files.items():
                form.add_field(name, content, filename=filename, content_type=mime)
            data = form
        read = _value(read_timeout, self._read)
        # aiohttp has no write timeout of its own: a slow upload is bounded by the whole
        # request's time instead (the write and the read of the answer).
        write = _value(write_timeout, self._media_write if files else self._write)
        connect = _value(connect_timeout, self._connect)
        timeout = aiohttp.ClientTimeout(
            total=_sum(write, read) if files else None,
            # Acquiring a connection: waiting for a free one in the pool, then connecting.
            connect=_sum(_value(pool_timeout, self._pool), connect),
            sock_connect=connect, sock_read=read)
        try:
            async with session.request(method, url, data=data, timeout=timeout,
                                       headers={"User-Agent": self.USER_AGENT}) as response:
                return response.status, await response.read()
        except TimeoutError as e:
            raise TimedOut from e
        except aiohttp.ClientError as e:
            raise NetworkError(f"aiohttp.{type(e).__name__}: {e}") from e
