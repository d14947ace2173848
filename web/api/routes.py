"""Endpoints declared once: the aiohttp routes and the OpenAPI document both come from them.

A handler gets a `Call` with the caller, the validated path, query and body, and returns a
pydantic model (or a `Reply` with a status and headers). Parsing is strict: unknown fields, wrong
types and malformed JSON are 4xx problems before any handler runs, so nothing is stored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from crm.apikeys import Principal, Scope
from crm.services import Core
from web.api.problems import ApiProblem, field_error, validation_problem

B = TypeVar("B", bound=BaseModel | None)
Q = TypeVar("Q", bound=BaseModel | None)
_PARAM = re.compile(r"\{(\w+)\}")
_MAX_ID = 2**31 - 1  # ids are 32-bit in the database: a larger one cannot exist
# Path parameters that are not integer ids, with what the URL may hold there; the handler
# validates the value itself (an order number: crm/orders/numbers.py).
TEXT_PARAMS = {"number": r"[^/]{1,64}", "name": r"[A-Za-z_]{1,32}"}


@dataclass(frozen=True, slots=True)
class Call(Generic[B, Q]):
    request: web.Request
    core: Core
    principal: Principal
    path: dict[str, int]
    query: Q
    body: B
    raw_body: bytes = b""
    text: dict[str, str] = field(default_factory=dict)  # the TEXT_PARAMS of the path

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)


@dataclass(frozen=True, slots=True)
class Reply:
    """A response: a model, or `body` already serialised (lists serialise the query service's
    values directly, in the same JSON as their documented model: tests/web checks it)."""

    model: BaseModel | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None

    def json(self) -> bytes:
        if self.body is not None:
            return self.body
        assert self.model is not None
        return self.model.model_dump_json(by_alias=True).encode()


Handler = Callable[[Call[Any, Any]], Awaitable[BaseModel | Reply]]


@dataclass(frozen=True, slots=True)
class Header:
    """A request header an endpoint reads, for the OpenAPI document."""

    name: str
    description: str
    required: bool = False
    max_length: int = 200


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str  # under /api/v1, with {name} for integer ids: "/customers/{id}"
    handler: Handler
    summary: str
    tag: str
    scopes: tuple[Scope, ...]  # any one of them will do
    response: type[BaseModel]
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    headers: tuple[Header, ...] = ()
    errors: tuple[int, ...] = ()
    description: str = ""

    @property
    def params(self) -> tuple[str, ...]:
        return _params(self.path)

    @property
    def aiohttp_path(self) -> str:
        # Ids are digits: anything else is a route that does not exist (404), not a bad field.
        return _PARAM.sub(lambda m: "{" + m.group(1) + ":" + TEXT_PARAMS.get(
            m.group(1), r"\d{1,10}") + "}", self.path)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


class Routes:
    """The endpoints of one part of the API (customers, conversations, …)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def route(self, method: str, path: str, *, summary: str, scopes: tuple[Scope, ...],
              response: type[BaseModel], status: int = 200, body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, headers: tuple[Header, ...] = (),
              errors: tuple[int, ...] = (), description: str = ""
              ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(
                method, path, handler, summary, self.tag, scopes, response, status, body,
                query, headers, errors, description or (handler.__doc__ or "").strip()))
            return handler
        return register


@cache
def _params(path: str) -> tuple[str, ...]:
    return tuple(_PARAM.findall(path))  # (every request asks: once per path)


def path_ids(endpoint: Endpoint, request: web.Request) -> dict[str, int]:
    ids = {name: int(request.match_info[name]) for name in endpoint.params
           if name not in TEXT_PARAMS}
    for value in ids.values():
        if not 1 <= value <= _MAX_ID:
            raise web.HTTPNotFound()
    return ids


def path_texts(endpoint: Endpoint, request: web.Request) -> dict[str, str]:
    return {name: request.match_info[name] for name in endpoint.params if name in TEXT_PARAMS}


def parse_query(model: type[BaseModel] | None, request: web.Request) -> BaseModel | None:
    if model is None:
        if request.query:
            raise ApiProblem(422, "validation-error", "this endpoint takes no query parameters",
                             title="Invalid request")
        return None
    values: dict[str, str] = {}
    for key in request.query:
        got = request.query.getall(key)
        if len(got) > 1:
            raise ApiProblem(422, "validation-error", f"query parameter {key!r} given "
                             f"{len(got)} times: give it once", title="Invalid request")
        values[key] = got[0]
    try:
        parsed = model.model_validate(values)
    except ValidationError as e:
        raise validation_problem(e, "query") from None
    _storable(parsed.model_dump(), "query")
    return parsed


def parse_body(model: type[BaseModel] | None, request: web.Request,
               raw: bytes) -> BaseModel | None:
    if model is None:
        if raw.strip() not in (b"", b"{}"):  # an empty object is a common way to send nothing
            raise ApiProblem(422, "validation-error", "this endpoint takes no request body",
                             title="Invalid request")
        return None
    if request.content_type != "application/json":
        raise ApiProblem(415, "unsupported-media-type",
                         "send the body as JSON with Content-Type: application/json")
    try:
        parsed = model.model_validate_json(raw or b"{}", strict=True)
    except ValidationError as e:
        if any(err["type"] == "json_invalid" for err in e.errors()):
            raise ApiProblem(400, "malformed-json",
                             f"the body is not valid JSON: {e.errors()[0]['msg']}") from None
        raise validation_problem(e, "body") from None
    _storable(parsed.model_dump(), "body")
    return parsed


def _storable(value: Any, where: str, path: str = "") -> None:
    """JSON allows what the databases refuse (PostgreSQL: NUL in text, NaN in JSON) or change
    (SQLite stores NaN as null): a 422 naming the field, before anything is stored."""
    problem = None
    if isinstance(value, str) and "\x00" in value:
        problem = ("string_nul", "NUL characters (\\u0000) cannot be stored")
    elif isinstance(value, float) and not math.isfinite(value):
        problem = ("finite_number", "NaN and Infinity cannot be stored: give a number")
    if problem is not None:
        raise ApiProblem(422, "validation-error", f"{path or where}: {problem[1]}",
                         title="Invalid request", errors=[field_error(
                             where, field=path or "(root)", code=problem[0], message=problem[1])])
    if isinstance(value, dict):
        for key, item in value.items():
            _storable(key, where, path)
            if not _plainly_storable(item):
                _storable(item, where, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if not _plainly_storable(item):
                _storable(item, where, f"{path}.{index}" if path else str(index))


def _plainly_storable(value: Any) -> bool:
    """The common leaves, checked without a call each (every request's query passes here)."""
    kind = value.__class__
    return value is None or kind is int or kind is bool or (kind is str and "\x00" not in value)
