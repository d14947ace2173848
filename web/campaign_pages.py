"""The campaigns' public pages: `/u/<token>` (unsubscribe) and `/l/<token>` (a tracked link).

Unsubscribe follows RFC 8058: a GET (a person, or a mail scanner following every link) only
shows a confirmation page and never unsubscribes; a POST unsubscribes at once: the mail
client's one-click request (`List-Unsubscribe=One-Click`, no cookie, no token besides the
link's own) and the page's button alike. A tracked link redirects to the campaign's link
and counts the click. Both tokens are signed and expire (crm/links.py): a changed one gets 403
(and a tracked link then redirects nowhere), an expired one 410, a campaign no longer kept 404.
The recording is crm's (crm/campaigns/results.py); this module only renders.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from crm.errors import NotFound
from crm.i18n import t
from crm.links import LinkExpired, LinkTampered
from crm.services import Core
from web.order_page import MAX_TOKEN, accepted_language, render_page

_HEADERS = {
    "Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow", "X-Content-Type-Options": "nosniff",
    # The page's one form posts to itself.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}


def mount(app: web.Application, core: Core) -> None:
    results = core.campaigns.results
    company = core.settings.bot.company_name

    def language_of(request: web.Request) -> str:
        return accepted_language(request.headers.get("Accept-Language", ""),
                                 core.settings.bot.default_language)

    def problem(status: int, key: str, language: str) -> web.Response:
        return render_page(status, "message.html", language, {"text": t(key, language)},
                           _HEADERS)

    async def redeem(request: web.Request, use: Callable[[str], Awaitable[Any]], invalid: str,
                     expired: str) -> tuple[Any, web.Response | None]:
        """What `use` makes of the link's token, or the page that says why it is no good:
        tampered 403, expired 410, no longer kept 404."""
        language = language_of(request)
        token = request.match_info["token"]
        try:
            if len(token) > MAX_TOKEN:
                raise LinkTampered("too long")
            return await use(token), None
        except LinkTampered:
            return None, problem(403, invalid, language)
        except LinkExpired:
            return None, problem(410, expired, language)
        except NotFound:
            return None, problem(404, invalid, language)

    async def ask(request: web.Request) -> web.Response:
        found, refused = await redeem(request, results.unsubscribe_page,
                                      "unsubscribe_invalid", "unsubscribe_expired")
        if refused is not None:
            return refused
        own, channel = found
        language = own or language_of(request)
        where = t(f"channel_{channel.value}", language)
        return render_page(200, "unsubscribe.html", language, {
            "title": t("unsubscribe_title", language), "company": company,
            "question": t("unsubscribe_question", language, company=company, channel=where),
            "button": t("unsubscribe_button", language)}, _HEADERS)

    async def unsubscribe(request: web.Request) -> web.Response:
        found, refused = await redeem(request, results.unsubscribe,
                                      "unsubscribe_invalid", "unsubscribe_expired")
        if refused is not None:
            return refused
        own, channel = found
        language = own or language_of(request)
        text = t("unsubscribe_done", language, company=company,
                 channel=t(f"channel_{channel.value}", language))
        return render_page(200, "message.html", language, {"text": text}, _HEADERS)

    async def follow(request: web.Request) -> web.StreamResponse:
        url, refused = await redeem(request, results.click, "link_invalid", "link_expired")
        if refused is not None:
            return refused
        raise web.HTTPFound(url, headers={"Cache-Control": "no-store",
                                          "Referrer-Policy": "no-referrer"})

    app.router.add_get("/u/{token}", ask)
    app.router.add_post("/u/{token}", unsubscribe)
    app.router.add_get("/l/{token}", follow)
