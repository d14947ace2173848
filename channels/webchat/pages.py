"""The widget's own files, and the demo shop page that shows it on a site.

`/webchat/widget.js` and `widget.css` are vendored in the package (no framework, no build
step). `/webchat/demo` is a page standing for a shop's site: it loads the widget from
[http] public_url with the one script tag a shop would use, under a Content-Security-Policy
that allows scripts from there only (no inline script), so it also shows that the widget needs
nothing else from the page it is on.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from crm.config import Settings, origin_of
from crm.i18n import pick_language, t, texts

STATIC = Path(__file__).parent / "static"
_ENV = Environment(loader=PackageLoader("channels.webchat", "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   undefined=StrictUndefined)
DEMO_COLOUR = "#0f766e"


def _static(name: str, content_type: str) -> web.RouteDef:
    path = STATIC / name

    async def serve(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={
            "Content-Type": content_type, "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
            # Any page may load the widget's files; what it may then call, Origins decides.
            "Cross-Origin-Resource-Policy": "cross-origin"})

    return web.get(f"/{name}", serve)


def mount(app: web.Application, settings: Settings) -> None:
    public = settings.http.public_url.rstrip("/")
    api = origin_of(public)
    csp = (f"default-src 'none'; script-src {api}; style-src 'self' {api}; "
           f"connect-src {api}; img-src {api} data:; frame-ancestors 'none'; "
           "base-uri 'none'; form-action 'none'")

    async def demo(request: web.Request) -> web.Response:
        wanted = request.query.get("lang") or request.headers.get("Accept-Language") or ""
        lang = pick_language(wanted.split(",")[0].split(";")[0].strip(),
                             settings.bot.default_language)
        html = _ENV.get_template("demo.html").render(
            lang=lang, t=texts("demo_", lang), widget=f"{public}/webchat/widget.js",
            colour=DEMO_COLOUR, console=f"{public}/console/",
            title=t("webchat_title", lang))
        return web.Response(text=html, content_type="text/html", charset="utf-8", headers={
            "Content-Security-Policy": csp, "Referrer-Policy": "strict-origin-when-cross-origin",
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

    app.router.add_routes([_static("widget.js", "text/javascript; charset=utf-8"),
                           _static("widget.css", "text/css; charset=utf-8"),
                           _static("demo.css", "text/css; charset=utf-8")])
    app.router.add_get("/demo", demo)
