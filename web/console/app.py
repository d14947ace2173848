"""The console as an aiohttp application, mounted by the composition root at /console.

Every answer carries the security headers (a Content-Security-Policy with no inline script,
frame-ancestors 'none', Referrer-Policy); an error of the core becomes a page that says what
went wrong (404, 409, 422), anything else a 500 page with the detail in the log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web

from crm.errors import Conflict, CrmError, NotFound
from crm.live import LiveFeed
from crm.services import Core
from web.console import (
    campaign_editor,
    campaign_results,
    campaigns,
    customer,
    events,
    imports,
    inbox,
    orders,
    render,
    reports,
    segments,
    signin,
    team,
)
from web.console.guard import CORE

log = structlog.get_logger(__name__)

PREFIX = "/console"
STATIC = Path(__file__).parent.parent / "static" / "console"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            e.headers.update(render.HEADERS)
            raise
        response = _error(request, e.status, "not_found" if e.status == 404 else "error_page")
    except NotFound:
        response = _error(request, 404, "not_found")
    except Conflict as e:
        response = _error(request, 409, "failed", reason=str(e))
    except CrmError as e:
        response = _error(request, 422, "failed", reason=str(e))
    except Exception:
        log.exception("console.failed", method=request.method, path=request.path)
        response = _error(request, 500, "error_page")
    if not response.prepared:
        for name, value in render.HEADERS.items():
            response.headers.setdefault(name, value)
    return response


def _error(request: web.Request, status: int, key: str, **values: object) -> web.Response:
    lang = render.language_of(request, None, request.app[CORE].settings.team_language)
    return render.page("message.html", lang, {"message": render.translator(lang)(
        key, **values)}, status=status)


def build_console(core: Core, live: LiveFeed) -> web.Application:
    app = web.Application(middlewares=[_headers])
    app[CORE] = core
    app[events.LIVE] = live
    app[events.STREAMS] = set()
    app[imports.JOBS] = {}
    app.on_shutdown.append(events.close_streams)
    app.on_shutdown.append(imports.stop_jobs)
    r = app.router
    r.add_get("/", inbox.home)
    r.add_get("/sign-in", signin.sign_in_page)
    r.add_post("/sign-in", signin.sign_in)
    r.add_post("/sign-out", signin.sign_out)
    r.add_get("/link/{token}", signin.link_page)
    r.add_post("/link/{token}", signin.use_link)
    r.add_get("/first-admin/{token}", signin.first_admin_page)
    r.add_post("/first-admin/{token}", signin.create_first_admin)
    r.add_get("/inbox", inbox.inbox)
    r.add_get("/customers", inbox.customers)
    r.add_get("/search", inbox.search)
    r.add_get("/customers/{customer_id}", customer.customer_page)
    for name, view in customer.ACTIONS.items():
        r.add_post(f"/customers/{{customer_id}}/{name}", view)
    r.add_get("/files/{message_id}/{index}", customer.download)
    r.add_get("/orders", orders.orders_page)
    r.add_get("/orders/import", imports.import_page)
    r.add_post("/orders/import", imports.start_import)
    r.add_get("/orders/import/{job}", imports.import_progress)
    r.add_get("/orders/{number}", orders.order_page)
    r.add_post("/orders/{number}/status", orders.change_status)
    r.add_get("/reports", reports.reports_home)
    r.add_get("/reports/{name}", reports.dashboard)
    r.add_get("/reports/{name}/data", reports.data)
    r.add_get("/reports/{name}/csv", reports.report_csv)
    r.add_get("/reports/{name}/rows", reports.drill)
    r.add_get("/reports/{name}/rows.csv", reports.rows_csv)
    r.add_get("/segments", segments.segments_page)
    r.add_get("/segments/new", segments.new_segment)
    r.add_post("/segments", segments.save)
    r.add_post("/segments/builder", segments.builder)
    r.add_post("/segments/preview", segments.preview)
    r.add_get("/segments/{segment_id}", segments.segment_page)
    r.add_get("/campaigns", campaigns.campaigns_page)
    r.add_get("/campaigns/new", campaign_editor.new_campaign)
    r.add_post("/campaigns", campaign_editor.create)
    r.add_post("/campaigns/preview", campaign_editor.preview)
    r.add_get("/campaigns/{campaign_id}", campaigns.campaign_page)
    r.add_get("/campaigns/{campaign_id}/edit", campaign_editor.edit_campaign)
    r.add_post("/campaigns/{campaign_id}/edit", campaign_editor.update)
    for name in ("test", "schedule", "pause", "resume", "cancel"):
        r.add_post(f"/campaigns/{{campaign_id}}/{name}", getattr(campaigns, name))
    r.add_get("/campaigns/{campaign_id}/results", campaign_results.results_page)
    r.add_get("/campaigns/{campaign_id}/data", campaign_results.data)
    r.add_get("/events", events.events)
    r.add_get("/team", team.team_page)
    r.add_post("/team/managers", team.add_manager)
    r.add_post("/team/managers/{manager_id}", team.change_manager)
    r.add_post("/team/keys", team.create_key)
    r.add_post("/team/keys/{name}/revoke", team.revoke_key)
    r.add_static("/static", STATIC)
    return app
