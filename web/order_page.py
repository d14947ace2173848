"""The order status page: `/o/<token>`, a signed, expiring link (crm/links.py) with no login.

It shows the order (number, status, history, items, total) and nothing else of the customer: no
name, address or phone. Rendered by Jinja2 with autoescape on (every value is escaped; the
template holds no logic beyond loops). A changed token gets 403, an expired one 410, an order
that is gone (or whose customer was erased) 404, each as a short page in the reader's language.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from crm.i18n import pick_language, t
from crm.links import LinkExpired, LinkTampered
from crm.models import Customer
from crm.orders.views import OrderView
from crm.services import Core

_ENV = Environment(loader=PackageLoader("web", "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   undefined=StrictUndefined)
_HEADERS = {
    "Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow", "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}
MAX_TOKEN = 300


def mount(app: web.Application, core: Core) -> None:
    async def page(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        language = accepted_language(request.headers.get("Accept-Language", ""),
                                     core.settings.bot.default_language)
        try:
            if len(token) > MAX_TOKEN:
                raise LinkTampered("too long")
            order = await core.orders.order_of_link(token)
        except LinkTampered:
            return _message(403, "page_invalid", language)
        except LinkExpired:
            return _message(410, "page_expired", language)
        if order is None:
            return _message(404, "page_not_found", language)
        customer = await Customer.get(id=order.customer_id)
        language = customer.language or language
        return _render(200, "order.html", language, _context(core, order, language))

    app.router.add_get("/o/{token}", page)


def _context(core: Core, order: OrderView, language: str) -> dict[str, Any]:
    statuses = core.orders.statuses
    items = [{"name": str(i.get("name") or i.get("sku") or "—"),
              "quantity": i.get("quantity") or "", "price": i.get("price") or ""}
             for i in order.items if isinstance(i, dict)]
    return {
        "title": t("page_title", language, number=order.number),
        "company": core.settings.bot.company_name,
        "status": statuses.label(order.status, language),
        "placed": f"{order.placed_at:%Y-%m-%d}" if order.placed_at else "",
        "history": [{"label": statuses.label(e.status, language),
                     "at": f"{e.happened_at:%Y-%m-%d %H:%M} UTC" if e.happened_at else ""}
                    for e in reversed(order.events)],
        "items": items,
        "total": f"{order.amount} {order.currency or ''}".strip() if order.amount else "",
        "words": {k: t(f"page_{k}", language) for k in
                  ("status", "history", "items", "total", "placed")},
    }


def _message(status: int, key: str, language: str) -> web.Response:
    return render_page(status, "message.html", language, {"text": t(key, language)})


def _render(status: int, template: str, language: str, context: dict[str, Any]) -> web.Response:
    return render_page(status, template, language, context)


def render_page(status: int, template: str, language: str, context: dict[str, Any],
                headers: dict[str, str] | None = None) -> web.Response:
    """A public page (order status, unsubscribe, …): autoescaped, never cached or indexed."""
    html = _ENV.get_template(template).render(lang=language, **context)
    return web.Response(status=status, text=html, content_type="text/html", charset="utf-8",
                        headers=headers or _HEADERS)


def accepted_language(header: str, default: str) -> str:
    """The first of our languages in an Accept-Language header."""
    for part in header.split(","):
        code = part.split(";")[0].strip()
        if code and pick_language(code, ""):
            return pick_language(code)
    return default
