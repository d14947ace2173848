"""Segments (marketers, admins): the saved ones, and the builder.

Conditions are added and combined with and/or (web/console/segment_form.py reads the form);
as the marketer edits, htmx posts the form to `/segments/preview`, which answers how many
customers match now and ten of them, from the same crm service as `crm segments preview`.
A segment the builder cannot show (nested deeper than its two levels) is edited as JSON, the
filter data of the README. Saving calls the service `crm segments create` and
`POST /api/v1/segments` call: the same name replaces the segment being edited, a new name
saves a new one.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from crm.campaigns.filters import parse
from crm.campaigns.segments import Preview
from crm.errors import Conflict, CrmError, InvalidField, NotFound
from crm.roles import Permission
from web.console.guard import PATH, Visit, redirect, staff
from web.console.segment_form import (
    AMOUNTS,
    COUNTS,
    DATES,
    KINDS,
    LISTS,
    OPS,
    act,
    from_filters,
    from_form,
    to_filters,
)

MAX_JSON = 50_000
MAX_DESCRIPTION = 2000
CHANNELS = ("telegram", "email", "sms")


def _json_text(filters: dict[str, Any]) -> str:
    return json.dumps(filters, ensure_ascii=False, indent=2, default=str)


class _State:
    """What the builder's form holds: name, description, and the builder or the JSON."""

    def __init__(self, form: Any) -> None:
        self.name = str(form.get("name", "")).strip()[:64]
        self.description = str(form.get("description", "")).strip()[:MAX_DESCRIPTION]
        self.original = str(form.get("original", "")).strip()[:64]
        self.mode = "json" if form.get("mode") == "json" else "builder"
        self.builder = from_form(form)
        self.json_text = str(form.get("filter_json", ""))[:MAX_JSON]

    def filters(self) -> tuple[dict[str, Any], dict[int, str], str | None]:
        """The filters, each builder condition's problem, and the JSON's problem."""
        if self.mode == "builder":
            filters, problems = to_filters(self.builder)
            return filters, problems, None
        try:
            data = json.loads(self.json_text or "{}")
        except ValueError as e:
            return {}, {}, f"not JSON: {e}"
        if not isinstance(data, dict):
            return {}, {}, "an object of conditions is expected, such as {\"tag\": \"vip\"}"
        try:
            parse(data)
        except InvalidField as e:
            return {}, {}, str(e)
        return data, {}, None


def _context(visit: Visit, state: _State, *, segment_id: int | None = None,
             preview: Preview | None = None, error: str | None = None,
             cannot_show: bool = False) -> dict[str, Any]:
    filters, problems, json_error = state.filters()
    unfinished = sum(1 for _g, _n, row in state.builder.numbered() if not row.done)
    return {
        "state": state, "builder": state.builder, "segment_id": segment_id,
        "filters": filters, "problems": problems, "json_error": json_error,
        "unfinished": unfinished if state.mode == "builder" else 0,
        "preview": preview, "error": error, "cannot_show": cannot_show, "saved": False,
        "kinds": KINDS, "lists": LISTS, "dates": DATES, "counts": COUNTS, "amounts": AMOUNTS,
        "ops": OPS, "channels": CHANNELS, "statuses": visit.core.orders.statuses.codes,
    }


async def _preview(visit: Visit, state: _State) -> Preview | None:
    filters, _problems, json_error = state.filters()
    return None if json_error else await visit.core.segments.preview(filters)


@staff(Permission.SEGMENTS)
async def segments_page(visit: Visit) -> web.Response:
    return visit.render("segments.html", {"segments": await visit.core.segments.all()})


@staff(Permission.SEGMENTS)
async def new_segment(visit: Visit) -> web.Response:
    state = _State({})
    return visit.render("segment.html", _context(
        visit, state, preview=await _preview(visit, state)))


@staff(Permission.SEGMENTS)
async def segment_page(visit: Visit) -> web.Response:
    raw = visit.request.match_info["segment_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound(f"no segment {raw!r}")
    segment = await visit.core.segments.get(int(raw))
    state = _State({"name": segment.name, "description": segment.description,
                    "original": segment.name})
    builder = from_filters(segment.filters)
    if builder is None:
        state.mode, state.json_text = "json", _json_text(segment.filters)
    else:
        state.builder = builder
    context = _context(visit, state, segment_id=segment.id,
                       preview=await _preview(visit, state), cannot_show=builder is None)
    context["saved"] = visit.request.query.get("saved") == "1"
    return visit.render("segment.html", context)


@staff(Permission.SEGMENTS)
async def builder(visit: Visit) -> web.Response:
    """A button of the builder (add or remove a condition or a group, JSON and back) or a
    changed kind of condition: the builder again, and the preview told to look again."""
    form = await visit.request.post()
    state = _State(form)
    action = str(form.get("action", ""))
    cannot_show = False
    if action == "to-json":
        filters, _problems, _error = state.filters()
        state.mode, state.json_text = "json", _json_text(filters)
    elif action == "to-builder":
        filters, _problems, json_error = state.filters()
        found = None if json_error else from_filters(filters)
        if found is None:
            cannot_show = json_error is None
        else:
            state.mode, state.builder = "builder", found
    elif state.mode == "builder":
        act(state.builder, action)
    context = _context(visit, state, cannot_show=cannot_show)
    if visit.request.headers.get("HX-Request") != "true":
        context["preview"] = await _preview(visit, state)
        return visit.render("segment.html", context)
    response = visit.render("segment_builder.html", context)
    response.headers["HX-Trigger"] = "segment-changed"
    return response


@staff(Permission.SEGMENTS)
async def preview(visit: Visit) -> web.Response:
    state = _State(await visit.request.post())
    return visit.render("segment_preview.html", _context(
        visit, state, preview=await _preview(visit, state)))


@staff(Permission.SEGMENTS)
async def save(visit: Visit) -> web.Response:
    state = _State(await visit.request.post())
    filters, problems, json_error = state.filters()
    try:
        if json_error:
            raise CrmError(json_error)
        if problems:
            raise CrmError("; ".join(problems.values()))
        segment = await visit.core.segments.create(
            state.name, filters, description=state.description, actor=visit.actor,
            replace=bool(state.original) and state.original == state.name)
    except CrmError as e:
        status = 409 if isinstance(e, Conflict) else 422
        return visit.render("segment.html", _context(
            visit, state, preview=await _preview(visit, state), error=str(e)), status=status)
    return redirect(f"{PATH}/segments/{segment.id}?saved=1")
