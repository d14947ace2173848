"""The API as an aiohttp application, mounted by the composition root at /api.

Every answer under /api/v1 is JSON or an RFC 9457 problem, including unknown routes (404), wrong
methods (405), oversized bodies (413) and errors of the core (NotFound → 404, Conflict → 409, a
rejected send or a bad address → 422). Later parts of the API (orders, campaigns) add their
`Routes` to `PARTS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from crm.errors import Conflict, CrmError, InvalidAddress, InvalidField, NotFound, SendRejected
from crm.orders.numbers import InvalidOrder
from crm.orders.statuses import UnknownStatus
from crm.pagination import InvalidCursor
from crm.ratelimit import RateLimiter
from crm.reports.period import BadPeriod
from crm.reports.reports import BadDimension, UnknownReport
from crm.services import Core
from web import docs
from web.api import campaigns, conversations, customers, messages, orders, reports
from web.api.auth import Gate
from web.api.openapi import document
from web.api.problems import ApiProblem, field_error
from web.api.routes import (
    Call,
    Endpoint,
    Reply,
    Routes,
    parse_body,
    parse_query,
    path_ids,
    path_texts,
)

log = structlog.get_logger(__name__)

PARTS: tuple[Routes, ...] = (customers.routes, conversations.routes, conversations.team,
                             messages.routes, orders.routes, reports.routes,
                             campaigns.routes)
PREFIX = "/api"
V1 = "/v1"
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
View = Callable[[web.Request], Awaitable[web.StreamResponse]]


def endpoints() -> list[Endpoint]:
    return [ep for part in PARTS for ep in part.endpoints]


def build_api(core: Core) -> web.Application:
    settings = core.settings.api
    max_body = settings.max_body_bytes
    app = web.Application(middlewares=[_problems(max_body)])
    gate = Gate(core.apikeys, RateLimiter(settings.rate_per_minute, settings.burst))
    eps = endpoints()
    for ep in eps:
        app.router.add_route(ep.method, V1 + ep.aiohttp_path, _view(ep, core, gate, max_body))
    spec = document(eps, title="chatcrm API", version=_version())
    spec["paths"]["/openapi.json"] = {"get": {
        "operationId": "openapi", "summary": "This document", "tags": ["meta"],
        "security": [], "responses": {"200": {"description": "OpenAPI 3.1",
                                              "content": {"application/json": {}}}}}}

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(spec, headers=_HEADERS)

    app.router.add_get(V1 + "/openapi.json", openapi)
    if settings.docs:
        docs.mount(app, "/docs", openapi_url=f"{V1.lstrip('/')}/openapi.json")
    return app


def _view(ep: Endpoint, core: Core, gate: Gate, max_body: int) -> View:
    async def view(request: web.Request) -> web.Response:
        principal = await gate.check(request, ep.scopes)
        path = path_ids(ep, request)
        query = parse_query(ep.query, request)
        raw = await _read(request, max_body) if ep.method in _BODY_METHODS else b""
        body = parse_body(ep.body, request, raw)
        result = await ep.handler(Call(request, core, principal, path, query, body, raw,
                                       path_texts(ep, request)))
        reply = result if isinstance(result, Reply) else Reply(result)
        return web.Response(body=reply.json(), status=reply.status,
                            content_type="application/json",
                            headers={**_HEADERS, **reply.headers})

    view.__name__ = ep.operation_id
    return view


async def _read(request: web.Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)


def _too_large(limit: int) -> ApiProblem:
    return ApiProblem(413, "body-too-large", f"the body is larger than {limit} bytes "
                      "([api] max_body_bytes)")


def _problems(max_body: int) -> Middleware:
    @web.middleware
    async def problems(request: web.Request, handler: View) -> web.StreamResponse:
        try:
            if (request.content_length or 0) > max_body:
                raise _too_large(max_body)
            return await handler(request)
        except ApiProblem as p:
            return p.response()
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return _http_problem(e, request).response()
        except CrmError as e:
            return _crm_problem(e).response()
        except Exception:
            log.exception("api.failed", method=request.method, path=request.path)
            return ApiProblem(500, "internal-error", "something went wrong on our side; the "
                              "log has the detail").response()

    return problems


def _http_problem(e: web.HTTPException, request: web.Request) -> ApiProblem:
    if e.status == 404:
        return ApiProblem(404, "not-found", f"no such resource: {request.method} {request.path}"
                          " (see /api/v1/openapi.json)")
    if e.status == 405:
        allow = e.headers.get("Allow", "")
        return ApiProblem(405, "method-not-allowed", f"{request.method} is not allowed here; "
                          f"allowed: {allow}", headers={"Allow": allow})
    if e.status == 413:
        return ApiProblem(413, "body-too-large", "the body is too large")
    return ApiProblem(e.status, "http-error", e.reason or "error")


def _crm_problem(e: CrmError) -> ApiProblem:
    if isinstance(e, NotFound):
        return ApiProblem(404, "not-found", str(e))
    if isinstance(e, Conflict):
        return ApiProblem(409, "conflict", str(e))
    if isinstance(e, InvalidCursor):
        return ApiProblem(400, "invalid-cursor", str(e))
    if isinstance(e, InvalidOrder):
        return ApiProblem(422, "validation-error", str(e), title="Invalid request",
                          errors=[field_error("body", e.field, e.reason, "invalid")])
    if isinstance(e, UnknownReport):
        return ApiProblem(404, "not-found", str(e))
    if isinstance(e, BadPeriod | BadDimension):
        return ApiProblem(422, "validation-error", str(e), title="Invalid request")
    if isinstance(e, InvalidField):
        return ApiProblem(422, "validation-error", str(e), title="Invalid request",
                          errors=[field_error("body", e.field, e.reason, "invalid")])
    if isinstance(e, UnknownStatus):
        return ApiProblem(422, "unknown-status", str(e), title="Invalid request")
    if isinstance(e, InvalidAddress | SendRejected):
        return ApiProblem(422, "rejected", str(e), title="Unprocessable request")
    # Any other refusal of the core (merging a customer into itself, …) says why.
    return ApiProblem(422, "rejected", str(e), title="Unprocessable request")


def _version() -> str:
    try:
        return version("chatcrm")
    except PackageNotFoundError:
        return "0"

