"""RFC 9457 problem details: every error of the API is one of these, as application/problem+json.

`type` is a URN naming the kind of problem (stable: clients may switch on it), `title` its short
sentence, `detail` what went wrong this time; a validation problem lists each field in `errors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PROBLEM_JSON = "application/problem+json"
_BASE = "urn:chatcrm:problem:"


class FieldError(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    where: str = Field(alias="in", description="body, query, path or header")
    field: str = Field(description="the field's path, dotted: identities.0.address")
    message: str
    code: str = Field(description="a stable word for the kind of error: missing, string_type…")


def field_error(where: str, field: str, message: str, code: str) -> FieldError:
    return FieldError.model_validate({"in": where, "field": field, "message": message,
                                      "code": code})


class Problem(BaseModel):
    """An error, as RFC 9457 describes it."""

    type: str = Field(description="a URN naming the kind of problem: urn:chatcrm:problem:…")
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(
        default=None, description="validation problems: each field and what is wrong with it")


class ApiProblem(Exception):
    """Raised anywhere in a request: the API answers with this problem."""

    def __init__(self, status: int, kind: str, detail: str, *, title: str | None = None,
                 errors: Sequence[FieldError] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        body = Problem(type=_BASE + self.kind, title=self.title, status=self.status,
                       detail=self.detail, errors=self.errors)
        return web.Response(
            body=body.model_dump_json(by_alias=True, exclude_none=True).encode(),
            status=self.status, content_type=PROBLEM_JSON, headers=self.headers)


def unknown_id(where: str, field: str, message: str) -> ApiProblem:
    """An id in the body or the query that leads nowhere: a 422 naming the field. (A missing id
    in the path is a 404: the resource asked for does not exist.)"""
    return ApiProblem(422, "validation-error", message, title="Invalid request",
                      errors=[field_error(where, field=field, code="not_found", message=message)])


def validation_problem(error: ValidationError, where: str,
                       detail: str = "the request has invalid fields") -> ApiProblem:
    return ApiProblem(422, "validation-error", detail, title="Invalid request",
                      errors=field_errors(error, where))


def field_errors(error: ValidationError, where: str) -> list[FieldError]:
    out = []
    for err in error.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        out.append(field_error(where, ".".join(loc) or "(root)", _message(err), err["type"]))
    return out


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field: check the spelling against /api/v1/openapi.json"
    if err["type"] == "missing":
        return "required field is missing"
    return str(err["msg"])
