"""Team administration (admins): managers (add, role, capacity, availability) and API keys
(create, shown once; revoke), through the same crm services as `crm managers` and
`crm apikeys`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm.apikeys import Scope
from crm.automation import automation
from crm.errors import CrmError
from crm.roles import Permission
from crm.types import Availability, Role
from web.console.guard import PATH, Visit, redirect, staff


async def _context(visit: Visit) -> dict[str, Any]:
    return {"managers": await visit.core.queries.managers(),
            "keys": await visit.core.apikeys.list(), "roles": [r.value for r in Role],
            "scopes": [s.value for s in Scope], "error": None, "new_key": None}


async def _again(visit: Visit, error: str | None = None, new_key: str | None = None,
                 status: int = 200) -> web.Response:
    context = await _context(visit)
    context.update(error=error, new_key=new_key)
    return visit.render("team.html", context, status=status)


@staff(Permission.TEAM)
async def team_page(visit: Visit) -> web.Response:
    return await _again(visit)


def _int(form: Any, name: str) -> int | None:
    raw = str(form.get(name, "")).strip()
    return int(raw) if raw.isdigit() and len(raw) < 16 else None


@staff(Permission.TEAM)
async def add_manager(visit: Visit) -> web.Response:
    form = await visit.request.post()
    try:
        role = Role(str(form.get("role", "manager")))
        manager = await visit.core.managers.add(
            _int(form, "telegram_user_id"), str(form.get("name", "")).strip()[:200], role,
            capacity=_int(form, "capacity") or 20, actor=visit.actor,
            email=str(form.get("email", "")).strip() or None)
        password = str(form.get("password", ""))
        if password:
            await visit.core.managers.set_password(manager, password, actor=visit.actor)
    except (CrmError, ValueError) as e:
        return await _again(visit, error=str(e), status=422)
    return redirect(f"{PATH}/team")


@staff(Permission.TEAM)
async def change_manager(visit: Visit) -> web.Response:
    form = await visit.request.post()
    raw = visit.request.match_info["manager_id"]
    try:
        manager = await visit.core.managers.get(int(raw) if raw.isdigit() else 0)
        role = Role(str(form["role"])) if form.get("role") else None
        await visit.core.managers.update(manager, actor=visit.actor, role=role,
                                         capacity=_int(form, "capacity"))
        wanted = str(form.get("availability", ""))
        if wanted in (a.value for a in Availability) and wanted != manager.availability.value:
            # Through routing: coming online takes the waiting conversations, as /online does.
            await automation(visit.core).router.set_availability(manager, Availability(wanted))
    except (CrmError, ValueError) as e:
        return await _again(visit, error=str(e), status=422)
    return redirect(f"{PATH}/team")


@staff(Permission.TEAM)
async def create_key(visit: Visit) -> web.Response:
    form = await visit.request.post()
    try:
        _row, key = await visit.core.apikeys.create(
            str(form.get("name", "")).strip(), [str(s) for s in form.getall("scope", [])],
            actor=visit.actor)
    except (CrmError, ValueError) as e:
        return await _again(visit, error=str(e), status=422)
    # Shown in this answer only: the key is not stored, and this page is not cached.
    return await _again(visit, new_key=key, status=201)


@staff(Permission.TEAM)
async def revoke_key(visit: Visit) -> web.Response:
    try:
        await visit.core.apikeys.revoke(visit.request.match_info["name"], actor=visit.actor)
    except CrmError as e:
        return await _again(visit, error=str(e), status=422)
    return redirect(f"{PATH}/team")
