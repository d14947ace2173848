"""One aiohttp client session per channel runtime, opened at start and closed at stop."""

from __future__ import annotations

import aiohttp


class HttpSession:
    def __init__(self, timeout: float = 15.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
