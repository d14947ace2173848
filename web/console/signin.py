"""Signing in and out: email and password, the bot's one-time link, the first admin's link."""

from __future__ import annotations

from aiohttp import web

from crm.errors import Conflict, CrmError
from crm.links import LinkExpired, LinkTampered
from crm.models import Manager
from crm.staff import LinkUsed, LockedOut, SignInRefused
from web.console import render
from web.console.guard import (
    COOKIE,
    CORE,
    PATH,
    PRE_COOKIE,
    Visit,
    pre_checked,
    pre_token,
    redirect,
    safe_next,
    set_cookie,
    staff,
)

MAX_TOKEN = 300


def _lang(request: web.Request) -> str:
    return render.language_of(request, None, request.app[CORE].settings.team_language)


def _form(request: web.Request, template: str, context: dict[str, object],
          status: int = 200) -> web.Response:
    token = pre_token(request)
    response = render.page(template, _lang(request), {"csrf": token, **context}, status=status)
    set_cookie(response, request.app[CORE], PRE_COOKIE, token)
    return response


def _signed_in(request: web.Request, token: str, to: str) -> web.Response:
    response = redirect(to)
    set_cookie(response, request.app[CORE], COOKIE, token)
    response.del_cookie(PRE_COOKIE, path=PATH)
    return response


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


async def sign_in_page(request: web.Request) -> web.Response:
    return _form(request, "sign_in.html", {"error": None, "email": "",
                                           "next": safe_next(request.query.get("next"))})


async def sign_in(request: web.Request) -> web.Response:
    core = request.app[CORE]
    form = await request.post()
    email, nxt = str(form.get("email", "")), safe_next(str(form.get("next", "")))
    _ = render.translator(_lang(request))
    if not await pre_checked(request):
        return _form(request, "sign_in.html", {"error": _("csrf"), "email": email,
                                               "next": nxt}, status=403)
    try:
        _manager, token = await core.staff.sign_in(email, str(form.get("password", "")),
                                                   _client(request))
    except LockedOut as e:
        return _form(request, "sign_in.html", {"error": _("locked_out", minutes=e.minutes),
                                               "email": email, "next": nxt}, status=429)
    except SignInRefused:
        return _form(request, "sign_in.html", {"error": _("wrong_password"), "email": email,
                                               "next": nxt}, status=401)
    return _signed_in(request, token, nxt)


@staff()
async def sign_out(visit: Visit) -> web.Response:
    await visit.core.staff.end(visit.who.session_id)
    response = redirect(f"{PATH}/sign-in")
    response.del_cookie(COOKIE, path=PATH)
    return response


def _link_problem(request: web.Request, e: Exception) -> web.Response:
    _ = render.translator(_lang(request))
    status, key = (410, "link_expired") if isinstance(e, LinkExpired) else \
        (410, "link_used") if isinstance(e, LinkUsed) else (403, "link_invalid")
    return render.page("message.html", _lang(request), {"message": _(key)}, status=status)


async def _link_manager(request: web.Request) -> Manager:
    token = request.match_info["token"]
    if len(token) > MAX_TOKEN:
        raise LinkTampered("too long")
    return await request.app[CORE].staff.check_sign_in_link(token)


async def link_page(request: web.Request) -> web.Response:
    """What the bot's link opens: a button, so that a link preview (which fetches the page)
    does not use the link up."""
    try:
        manager = await _link_manager(request)
    except (LinkTampered, LinkExpired, LinkUsed) as e:
        return _link_problem(request, e)
    return _form(request, "link.html", {"name": manager.name})


async def use_link(request: web.Request) -> web.Response:
    if not await pre_checked(request):
        return _form(request, "message.html", {"message": render.translator(_lang(request))(
            "csrf")}, status=403)
    try:
        await _link_manager(request)
        _manager, token = await request.app[CORE].staff.use_sign_in_link(
            request.match_info["token"])
    except (LinkTampered, LinkExpired, LinkUsed) as e:
        return _link_problem(request, e)
    return _signed_in(request, token, f"{PATH}/")


async def first_admin_page(request: web.Request) -> web.Response:
    try:
        await request.app[CORE].staff.check_first_admin_link(request.match_info["token"][
            :MAX_TOKEN])
    except (LinkTampered, LinkExpired, LinkUsed) as e:
        return _link_problem(request, e)
    except Conflict:
        return render.page("message.html", _lang(request), {
            "message": render.translator(_lang(request))("first_admin_taken")}, status=409)
    return _form(request, "first_admin.html", {"error": None, "name": "", "email": ""})


async def create_first_admin(request: web.Request) -> web.Response:
    form = await request.post()
    name, email = str(form.get("name", "")).strip(), str(form.get("email", "")).strip()
    if not await pre_checked(request):
        return _form(request, "message.html", {"message": render.translator(_lang(request))(
            "csrf")}, status=403)
    try:
        _manager, token = await request.app[CORE].staff.create_first_admin(
            request.match_info["token"][:MAX_TOKEN], name, email,
            str(form.get("password", "")))
    except (LinkTampered, LinkExpired, LinkUsed) as e:
        return _link_problem(request, e)
    except Conflict:
        return render.page("message.html", _lang(request), {
            "message": render.translator(_lang(request))("first_admin_taken")}, status=409)
    except CrmError as e:  # a weak password, a bad email: said on the form
        return _form(request, "first_admin.html", {"error": str(e), "name": name,
                                                   "email": email}, status=422)
    return _signed_in(request, token, f"{PATH}/team")
