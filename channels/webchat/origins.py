"""Which pages may use the web chat: `[webchat] allowed_origins`, and our own.

A request that says where it comes from (the Origin header browsers send with every
cross-origin call, and with POSTs) must come from an allowed origin, exactly, or it gets 403
and changes nothing, on every endpoint. An allowed origin gets the CORS headers that let its
page read our answers (`Access-Control-Allow-Origin` is that origin, never `*`), and its
preflights are answered. A request without an Origin (the widget's script tag, the demo page
itself, a test client) is a same-origin or non-browser call: the visitor's token still decides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import structlog
from aiohttp import web

from crm.config import origin_of

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ALLOW_HEADERS = "Authorization, Content-Type"
ALLOW_METHODS = "GET, POST, OPTIONS"


class Origins:
    def __init__(self, allowed: Iterable[str], public_url: str) -> None:
        self.allowed = frozenset({*allowed, origin_of(public_url)})

    def allows(self, origin: str | None) -> bool:
        return origin is None or origin in self.allowed

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not self.allows(origin):
            log.warning("webchat.origin_refused", origin=(origin or "")[:200],
                        path=request.path, remote=request.remote)
            return web.json_response({"error": "origin", "detail": f"the origin {origin} may "
                                      "not use this chat: add it to [webchat] allowed_origins"},
                                     status=403)
        if request.method == "OPTIONS":
            return web.Response(status=204, headers={
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": "600"})
        return await handler(request)

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """CORS headers on every answer to an allowed origin, streams included (whose headers
        go before the handler returns, so a middleware would be too late)."""
        origin = request.headers.get("Origin")
        if origin is not None and origin in self.allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")


async def preflight(_request: web.Request) -> web.Response:
    """The route OPTIONS requests match; the guard answers them."""
    return web.Response(status=204)
