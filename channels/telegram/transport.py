"""python-telegram-bot's HTTP requests over aiohttp instead of its default httpx.

PTB lets a bot bring its own `BaseRequest`. httpx's connection pool scans every pooled
connection on each request (whether it expired, whether its socket is readable): with a pool
big enough for paid broadcasts (tens of connections in flight) that cost about 4 ms of CPU a
message, so a bot could not send more than a hundred or so a second; aiohttp (the library our
HTTP server already runs on) sends the same messages for about a seventh of that. What PTB
expects of a request is kept: form fields, multipart uploads, its four timeouts, proxies from
the environment (read once, as httpx does: aiohttp's `trust_env` would read them, and
~/.netrc, in a thread at every request), `TimedOut` and `NetworkError`.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from functools import lru_cache
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _value(given: object, default: float | None) -> float | None:
    """A timeout PTB passed, or ours when it passed none (its DEFAULT_NONE)."""
    if given is BaseRequest.DEFAULT_NONE:
        return default
    assert given is None or isinstance(given, int | float), f"a timeout of {given!r}"
    return given


def _sum(*parts: float | None) -> float | None:
    """A timeout made of several waits; None (no limit) if any of them has none."""
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


@lru_cache(maxsize=256)
def _url(url: str) -> URL:
    # A bot calls a few dozen URLs (one per method): parse each once.
    return URL(url)


def env_proxy(url: URL) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY, ALL_PROXY, …, NO_PROXY)."""
    host = url.host or ""
    if urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(url.scheme) or proxies.get("all")


class AiohttpRequest(BaseRequest):
    """One aiohttp session with a pool of `pool_size` connections to the Bot API."""

    __slots__ = ("_connect", "_media_write", "_pool", "_pool_size", "_proxies", "_read",
                 "_session", "_write")

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
        self._proxies: dict[tuple[str, str | None], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            # Made here, not in __init__: a session belongs to the running loop.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT})
            self._proxies = {}

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def _proxy(self, url: URL) -> str | None:
        key = (url.scheme, url.host)
        if key not in self._proxies:
            self._proxies[key] = env_proxy(url)
        return self._proxies[key]

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None
        data: Any = None
        headers = None
        if files:
            # Names as they are: aiohttp would percent-encode them, and Telegram shows a file
            # name as it gets it ("%D1%81%D1%87..." for "счёт"). A line break cannot end the
            # header early.
            form = aiohttp.FormData(quote_fields=False)
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            for name, (filename, content, mime) in files.items():
                if filename is not None:
                    filename = " ".join(filename.splitlines())
                form.add_field(name, content, filename=filename, content_type=mime)
            data = form
        elif fields:
            # Encoded here: aiohttp's own form encoding of a dict costs several times more.
            data, headers = urllib.parse.urlencode(fields).encode(), _FORM
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
        target = _url(url)
        try:
            async with session.request(method, target, data=data, headers=headers,
                                       timeout=timeout, proxy=self._proxy(target)) as response:
                return response.status, await response.read()
        except TimeoutError as e:
            raise TimedOut from e
        except aiohttp.ClientError as e:
            raise NetworkError(f"aiohttp.{type(e).__name__}: {e}") from e

