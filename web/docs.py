"""The interactive API documentation at /api/docs: Swagger UI from our own static files.

No CDN: many deployments have no internet. The vendored files (web/static/swagger-ui, see its
README for the version and checksums) and our page are served by this server only, under a
Content-Security-Policy that lets the page load nothing from anywhere else.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'none'")


def mount(app: web.Application, path: str, *, openapi_url: str) -> None:
    """Serve the page at `path` and its files under `path`/static/ (URLs in the page are
    relative, so the API can sit behind a proxy's prefix)."""
    html = (STATIC / "docs" / "index.html").read_text(encoding="utf-8").replace(
        "OPENAPI_URL", openapi_url)
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer"}

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html", headers=headers)

    app.router.add_get(path, page)
    app.router.add_static(f"{path}/static/swagger-ui", STATIC / "swagger-ui")
    app.router.add_static(f"{path}/static/docs", STATIC / "docs")
