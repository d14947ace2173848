"""Pages of the console: Jinja2 with autoescape (every value is escaped, customer text
included) and StrictUndefined (a missing value is an error, not an empty string). Templates
get plain values from the handlers and hold no queries; `_` puts a text of the team's
catalogue (crm/locales/team.*.toml, keys `console_…`) in the reader's language.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from crm.i18n import pick_language, team

_ENV = Environment(loader=PackageLoader("web", "templates/console"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

# No inline script anywhere: JS comes from /console/static only. htmx's own inline style for
# its indicators is turned off in the page's htmx-config, so styles need no 'unsafe-inline'.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP, "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
    "Cache-Control": "no-store, private", "X-Robots-Tag": "noindex, nofollow",
}


def when(moment: datetime | None) -> str:
    """UTC in the page; console.js shows it in the reader's time zone."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


_ENV.filters["when"] = when
_ENV.filters["iso"] = iso


def translator(language: str) -> Any:
    def _(key: str, **values: object) -> str:
        return team(f"console_{key}", language, **values)

    return _


def page(template: str, language: str, context: dict[str, Any], *,
         status: int = 200) -> web.Response:
    html = _ENV.get_template(template).render(lang=language, _=translator(language),
                                              **context)
    return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")


def language_of(request: web.Request, preferred: str | None, default: str) -> str:
    """The staff member's language; else the browser's first of ours; else the team's."""
    if preferred:
        return pick_language(preferred, default)
    for part in request.headers.get("Accept-Language", "").split(","):
        code = part.split(";")[0].strip()
        if code and pick_language(code, ""):
            return pick_language(code)
    return default
