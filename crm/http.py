"""The HTTP server: health, metrics, and the channels' webhooks (mounted by the adapters)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from aiohttp import web
from tortoise.connection import get_connection

from crm import metrics
from crm.ports import ChannelHealth

log = structlog.get_logger(__name__)

HealthSource = Callable[[], dict[str, ChannelHealth]]


def build_app(channel_health: HealthSource) -> web.Application:
    app = web.Application(client_max_size=25 * 1024 * 1024)

    async def healthz(_request: web.Request) -> web.Response:
        body: dict[str, object] = {}
        healthy = True
        try:
            await asyncio.wait_for(get_connection("default").execute_query("SELECT 1"), 5)
            body["database"] = {"state": "up"}
        except Exception as e:
            healthy = False
            body["database"] = {"state": "down", "detail": f"{type(e).__name__}: {e}"}
        channels: dict[str, object] = {}
        for name, health in channel_health().items():
            channels[name] = {"state": health.state, "detail": health.detail}
            healthy = healthy and health.healthy
        body["channels"] = channels
        body["status"] = "ok" if healthy else "unhealthy"
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics_view(_request: web.Request) -> web.Response:
        try:
            payload = await metrics.render()
        except Exception:
            log.exception("metrics.failed")
            return web.Response(status=503, text="metrics unavailable: database not reachable\n")
        return web.Response(body=payload, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    return app


class HttpServer:
    """Runs an aiohttp application on host:port inside the service's loop."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        log.info("http.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
