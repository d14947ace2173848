"""`/`: what this server is, and where to go: the demo shop with the web chat, the web console,
the API's documentation. What a newcomer sees first after `./scripts/run`.

The demo link leads to the demo page on another origin than the service's own where the config
allows it (127.0.0.1 and localhost are two origins of the same server), so that the widget is
seen working as it will on a shop's site: across origins.
"""

from __future__ import annotations

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from crm.config import Settings, origin_of
from crm.i18n import pick_language, team

_ENV = Environment(loader=PackageLoader("web", "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   undefined=StrictUndefined)
_HEADERS = {
    "Cache-Control": "no-store", "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}
_LOOPBACK = (("//127.0.0.1", "//localhost"), ("//localhost", "//127.0.0.1"))


def demo_url(settings: Settings) -> str:
    """The demo page, on the other loopback name when the config allows that origin."""
    public = settings.http.public_url.rstrip("/")
    for ours, other in _LOOPBACK:
        swapped = public.replace(ours, other, 1)
        if swapped != public and origin_of(swapped) in settings.webchat.allowed_origins:
            return f"{swapped}/webchat/demo"
    return f"{public}/webchat/demo"


def mount(app: web.Application, settings: Settings) -> None:
    public = settings.http.public_url.rstrip("/")

    async def home(request: web.Request) -> web.Response:
        first = request.headers.get("Accept-Language", "").split(",")[0].split(";")[0]
        lang = pick_language(first.strip(), settings.team_language)

        def _(key: str, **values: object) -> str:
            return team(f"home_{key}", lang, **values)

        html = _ENV.get_template("home.html").render(
            lang=lang, _=_, demo=demo_url(settings) if settings.webchat.enabled else None,
            console=f"{public}/console/" if settings.console.enabled else None,
            docs=f"{public}/api/docs" if settings.api.enabled and settings.api.docs else None,
            health=f"{public}/healthz")
        return web.Response(text=html, content_type="text/html", charset="utf-8",
                            headers=_HEADERS)

    app.router.add_get("/", home)
