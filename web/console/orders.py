"""Orders: the list with search, one order with its history, and its status moved by a
manager through the same crm service the API's `POST /orders/{number}/status` calls (one
event, the customer told once on their channel when the status notifies)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm.actors import actor_named
from crm.errors import Conflict, CrmError, NotFound
from crm.i18n import in_language
from crm.orders.numbers import InvalidOrder, check_number
from crm.orders.queries import OrderFilter
from crm.orders.views import OrderView
from crm.roles import Permission
from web.console.guard import PATH, Visit, redirect, staff

MAX_QUERY = 200
MAX_NOTE = 2000


def _number(visit: Visit) -> str:
    raw = visit.request.match_info["number"]
    try:
        return check_number(raw)
    except InvalidOrder:
        raise NotFound(f"order {raw} does not exist") from None


def _statuses(visit: Visit) -> list[dict[str, Any]]:
    statuses = visit.core.orders.statuses
    return [{"code": code, "label": statuses.label(code, visit.lang),
             "final": statuses.get(code).final} for code in statuses.codes]


@staff(Permission.ORDERS)
async def orders_page(visit: Visit) -> web.Response:
    q = visit.request.query
    text = (q.get("q") or "").strip()[:MAX_QUERY]
    codes = visit.core.orders.statuses.codes
    status = q.get("status") if q.get("status") in codes else None
    page = await visit.core.queries.orders.search(
        OrderFilter(q=text or None, status=status), visit.core.settings.console.page_size,
        q.get("cursor") or None)
    return visit.render("orders.html", {
        "lines": page.items, "next_cursor": page.next_cursor, "q": text,
        "status": status or "", "statuses": _statuses(visit),
        "labels": {s: visit.core.orders.statuses.label(s, visit.lang) for s in codes}})


async def _context(visit: Visit, order: OrderView) -> dict[str, Any]:
    statuses = visit.core.orders.statuses
    customer = await visit.core.queries.customer(order.customer_id)
    final = order.status in statuses.codes and statuses.get(order.status).final
    return {
        "order": order, "customer": customer, "error": None,
        "label": statuses.label(order.status, visit.lang), "final": final,
        "events": [{"e": e, "label": statuses.label(e.status, visit.lang),
                    "previous": statuses.label(e.previous_status, visit.lang)
                    if e.previous_status else None,
                    "actor": in_language(await actor_named(e.actor), visit.lang)}
                   for e in reversed(order.events)],
        "moves": [s for s in _statuses(visit) if s["code"] != order.status],
    }


@staff(Permission.ORDERS)
async def order_page(visit: Visit) -> web.Response:
    order = await visit.core.queries.orders.by_number(_number(visit))
    return visit.render("order.html", await _context(visit, order))


@staff(Permission.ORDER_STATUS)
async def change_status(visit: Visit) -> web.Response:
    number = _number(visit)
    form = await visit.request.post()
    note = str(form.get("note", "")).strip()
    try:
        if len(note) > MAX_NOTE:
            raise CrmError(f"the note is too long: at most {MAX_NOTE} characters")
        saved = await visit.core.orders.set_status(
            number, str(form.get("status", "")), note=note, source="console",
            actor=visit.actor)
    except NotFound:
        raise
    except CrmError as e:
        context = await _context(visit, await visit.core.queries.orders.by_number(number))
        context["error"] = str(e)
        return visit.render("order.html", context, status=409 if isinstance(e, Conflict)
                            else 422)
    return redirect(f"{PATH}/orders/{saved.order.number}")
