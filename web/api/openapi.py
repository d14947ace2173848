"""The OpenAPI 3.1 document, made from the endpoints and their pydantic models.

Pydantic's JSON Schema (2020-12) is OpenAPI 3.1's schema dialect as it is, so the models' schemas
go into `components.schemas` unchanged and the endpoints only add paths around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from crm.types import WebhookEvent
from web.api.problems import PROBLEM_JSON, Problem
from web.api.routes import TEXT_PARAMS, Endpoint
from web.api.schemas.events import EVENT_MODELS

_REF = "#/components/schemas/{model}"
_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
Mode = Literal["validation", "serialization"]

SIGNATURE = (
    "Each POST carries `Chatcrm-Signature: t=TIMESTAMP,v1=HEX`: HEX is the HMAC-SHA256, keyed "
    "with the receiver's secret, of `TIMESTAMP.BODY` (the raw body bytes). Check it with a "
    "constant-time comparison and refuse old timestamps; the event `id` stays the same on every "
    "retry, so a receiver can dedupe. Answer 2xx to accept the event, 410 Gone to drop it (it is "
    "not retried; later events still come). Any other answer (401, 403, 404, 5xx…), a timeout "
    "or a refused connection is retried with backoff, up to `[api] webhook_max_attempts` "
    "times; a receiver's events come in order, so later ones wait behind one being retried.")


def document(endpoints: Sequence[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Mode]] = [(Problem, "serialization")]
    for ep in endpoints:
        models.append((ep.response, "serialization"))
        if ep.body is not None:
            models.append((ep.body, "validation"))
        if ep.query is not None:
            models.append((ep.query, "validation"))
    models += [(m, "serialization") for m in EVENT_MODELS.values()]
    refs, top = models_json_schema(list(dict.fromkeys(models)), ref_template=_REF)
    schemas: dict[str, Any] = top.get("$defs", {})

    def ref(model: type[BaseModel], mode: Mode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        query_schema = schemas[ref(ep.query, "validation")["$ref"].rsplit("/", 1)[1]] \
            if ep.query is not None else None
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(
            ep, ref(ep.response, "serialization"),
            ref(ep.body, "validation") if ep.body is not None else None, query_schema)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "The chatcrm HTTP API. Authenticate with `Authorization: Bearer "
                                "KEY` (`crm apikeys create NAME --scope …`). Errors are RFC 9457 "
                                "problem documents.\n\nWebhooks: " + SIGNATURE},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "webhooks": {event.value: {"post": {
            "summary": f"{event.value}", "description": SIGNATURE,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": ref(model, "serialization")}}},
            "responses": {"200": {"description": "accepted (any 2xx)"},
                          "410": {"description": "gone: this event is dropped, not retried "
                                                 "(later events still come)"},
                          "default": {"description": "any other answer: retried with backoff"}}}}
            for event, model in EVENT_MODELS.items() if event in WebhookEvent},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "an API key: crm_…"}},
        },
    }


def _operation(ep: Endpoint, response: dict[str, Any], body: dict[str, Any] | None,
               query: dict[str, Any] | None) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": 64}
         if p in TEXT_PARAMS else _ID} for p in ep.params]
    for name, prop in (query or {}).get("properties", {}).items():
        prop = dict(prop)
        param = {"name": name, "in": "query", "required": name in query.get("required", [])
                 if query else False, "schema": prop}
        if "description" in prop:
            param["description"] = prop.pop("description")
        params.append(param)
    params += [{"name": h.name, "in": "header", "required": h.required,
                "description": h.description,
                "schema": {"type": "string", "maxLength": h.max_length}} for h in ep.headers]
    errors = set(ep.errors)
    if ep.scopes:
        errors |= {401, 403, 429}
    if body is not None:
        errors |= {400, 413, 415, 422}
    if query is not None:
        errors.add(422)
    responses: dict[str, Any] = {str(ep.status): {
        "description": HTTPStatus(ep.status).phrase,
        "content": {"application/json": {"schema": response}}}}
    for status in sorted(errors):
        responses[str(status)] = {"description": HTTPStatus(status).phrase, "content": {
            PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}}}
    description = ep.description
    if ep.scopes:
        description += ("\n\n" if description else "") + "Scope: " + " or ".join(
            f"`{s.value}`" for s in ep.scopes) + "."
    op: dict[str, Any] = {"operationId": ep.operation_id, "summary": ep.summary,
                          "description": description, "tags": [ep.tag],
                          "parameters": params, "responses": responses,
                          "security": [{"bearerAuth": []}] if ep.scopes else []}
    if ep.scopes:
        op["x-scopes"] = [s.value for s in ep.scopes]
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op
