"""Who is asking, and may they: the session cookie, the form token, the role.

Every page and action of the console goes through `staff(permission)`: no live session → the
sign-in page (or 401 for scripts and the event stream); a POST whose form token is not the
session's, or that comes from another site's page → 403; a role without the permission → 403.
The forms before sign-in (password, link, first admin) carry a token too, checked against a
cookie of its own (double submit), since there is no session yet to hold one.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from crm.models import Manager
from crm.roles import Permission, allows
from crm.services import Core
from crm.staff import SignedIn
from web.console import render

CORE = web.AppKey("core", Core)
COOKIE = "crm_session"
PRE_COOKIE = "crm_pre"
PATH = "/console"


@dataclass(frozen=True, slots=True)
class Visit:
    """A request of a signed-in staff member."""

    request: web.Request
    core: Core
    who: SignedIn
    lang: str

    @property
    def manager(self) -> Manager:
        return self.who.manager

    @property
    def actor(self) -> str:
        return f"manager:{self.manager.id}"

    def can(self, permission: Permission) -> bool:
        return allows(self.manager.role, permission)

    def render(self, template: str, context: dict[str, Any], *,
               status: int = 200) -> web.Response:
        return render.page(template, self.lang, {
            "me": self.manager, "csrf": self.who.csrf,
            "can": {p.value: self.can(p) for p in Permission}, **context}, status=status)

    def refuse(self, status: int, key: str, **values: object) -> web.Response:
        return self.render("message.html", {"message": render.translator(self.lang)(
            key, **values)}, status=status)


View = Callable[[Visit], Awaitable[web.StreamResponse]]


def secure(core: Core) -> bool:
    return core.settings.http.public_url.startswith("https:")


def set_cookie(response: web.StreamResponse, core: Core, name: str, value: str,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, path=PATH, httponly=True, samesite="Lax",
                        secure=secure(core), max_age=max_age)


def same_site(request: web.Request) -> bool:
    """A POST from one of our own pages: browsers send Origin with every POST (and
    Sec-Fetch-Site); a page of another site that posts to us is refused even with a cookie."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    host = urlsplit(origin).netloc
    public = urlsplit(request.app[CORE].settings.http.public_url).netloc
    return host in (request.host, public)


def staff(permission: Permission | None = None) -> Callable[[View], Callable[
        [web.Request], Awaitable[web.StreamResponse]]]:
    def wrap(view: View) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            core = request.app[CORE]
            who = await core.staff.check(request.cookies.get(COOKIE, ""))
            default = core.settings.team_language
            if who is None:
                lang = render.language_of(request, None, default)
                if request.method == "GET" and "HX-Request" not in request.headers \
                        and request.path != f"{PATH}/events":
                    raise web.HTTPSeeOther(f"{PATH}/sign-in?next={quote(request.path_qs)}")
                response = render.page("message.html", lang, {
                    "message": render.translator(lang)("signed_out")}, status=401)
                response.headers["HX-Redirect"] = f"{PATH}/sign-in"
                return response
            visit = Visit(request, core, who, render.language_of(
                request, who.manager.language, default))
            if request.method == "POST":
                form = await request.post()
                if not same_site(request) or not hmac.compare_digest(
                        str(form.get("csrf", "")).encode(), who.csrf.encode()):
                    return visit.refuse(403, "csrf")
            if permission is not None and not visit.can(permission):
                return visit.refuse(403, "forbidden")
            return await view(visit)

        handler.__name__ = view.__name__
        return handler

    return wrap


def redirect(to: str) -> web.Response:
    """303 See Other: after a POST, the browser GETs the page (Post/Redirect/Get)."""
    return web.Response(status=303, headers={"Location": to})


def pre_token(request: web.Request) -> str:
    """The form token of a page before sign-in: the cookie's, or a new one."""
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


async def pre_checked(request: web.Request) -> bool:
    form = await request.post()
    cookie = request.cookies.get(PRE_COOKIE, "")
    sent = str(form.get("csrf", ""))
    return bool(cookie) and same_site(request) and hmac.compare_digest(
        sent.encode(), cookie.encode())


def safe_next(value: str | None) -> str:
    """Where to go after signing in: only a page of the console."""
    if value and value.startswith(f"{PATH}/") and not value.startswith("//") \
            and "\\" not in value:
        return value
    return f"{PATH}/"
