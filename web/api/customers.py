"""Customers: list, read, create, update, identities, merge, consent, export, forget."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import orjson
from pydantic import TypeAdapter

from crm.apikeys import Scope
from crm.consent import EVERY_CHANNEL, ConsentState
from crm.errors import InvalidAddress
from crm.identity import normalize_typed_address
from crm.models import Customer
from crm.queries import CustomerFilter
from crm.types import Channel, ConsentSource
from crm.views import CustomerCard, CustomerView, Page
from web.api.problems import ApiProblem, field_error, unknown_id
from web.api.routes import Call, Reply, Routes
from web.api.schemas.common import channel
from web.api.schemas.customers import (
    ConsentIn,
    ConsentList,
    ConsentOut,
    CustomerCardOut,
    CustomerCreate,
    CustomerList,
    CustomerQuery,
    CustomerUpdate,
    ExportOut,
    ForgetOut,
    IdentityIn,
    MergeIn,
)

routes = Routes("customers")
READ, WRITE = (Scope.CUSTOMERS_READ,), (Scope.CUSTOMERS_WRITE,)
_PAGE = TypeAdapter(Page[CustomerView])


def _check_address(channel: Channel, raw: str, call: Call[Any, Any], field: str) -> None:
    try:
        normalize_typed_address(channel, raw, call.core.settings.sms.default_region)
    except InvalidAddress as e:
        raise ApiProblem(422, "validation-error", str(e), title="Invalid request", errors=[
            field_error("body", field=field, code="invalid_address", message=str(e))]) from None


def page_size(call: Call[Any, Any], asked: int | None) -> int:
    api = call.core.settings.api
    return min(asked or api.default_page_size, api.max_page_size)


def consent_out(states: list[ConsentState]) -> list[ConsentOut]:
    return [ConsentOut.model_validate(_consent(s)) for s in states]


def card_out(card: CustomerCard) -> CustomerCardOut:
    return CustomerCardOut.model_validate(_card_fields(card))


def _card_fields(card: CustomerCard) -> dict[str, Any]:
    """CustomerCardOut's fields, taken from the views as they are."""
    customer = card.customer
    return {**{name: getattr(customer, name) for name in _CUSTOMER_FIELDS},
            "consent": [_consent(s) for s in card.consent], "conversations": card.conversations}


def card_json(card: CustomerCard) -> bytes:
    """`card_out(card)` as JSON (tests/web checks it), written by orjson straight from the
    views: a quarter of the time of validating the model and dumping it. orjson writes no
    integer past 64 bits, which free-form attributes may hold: such a card goes the long way."""
    try:
        return orjson.dumps(_card_fields(card), option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:
        return card_out(card).model_dump_json(by_alias=True).encode()


_CUSTOMER_FIELDS = tuple(f.name for f in fields(CustomerView))


def _consent(s: ConsentState) -> dict[str, Any]:
    return {"kind": s.kind, "channel": None if s.channel == EVERY_CHANNEL else s.channel,
            "granted": s.granted, "source": s.source, "changed_at": s.changed_at}


async def _card(call: Call[Any, Any], customer_id: int, status: int = 200,
                headers: dict[str, str] | None = None) -> Reply:
    card = await call.core.queries.card(customer_id)
    return Reply(status=status, headers=headers or {}, body=card_json(card))


@routes.route("GET", "/customers", summary="List customers", scopes=READ,
              response=CustomerList, query=CustomerQuery, errors=(400, 422))
async def list_customers(call: Call[None, CustomerQuery]) -> Reply:
    """Most recently seen first; customers who never wrote come last, newest first."""
    q = call.query
    page = await call.core.queries.customers(
        CustomerFilter(tag=q.tag, channel=channel(q.channel), q=q.q,
                       created_after=q.created_after, created_before=q.created_before,
                       seen_after=q.seen_after, seen_before=q.seen_before),
        page_size(call, q.limit), q.cursor)
    return Reply(body=_PAGE.dump_json(page))  # = CustomerList (tests/web checks it)


@routes.route("GET", "/customers/{id}", summary="Get a customer", scopes=READ,
              response=CustomerCardOut, errors=(404,))
async def get_customer(call: Call[None, None]) -> Reply:
    """Identities, tags, attributes, consent per channel, and a summary of conversations. A
    customer merged into another answers with the survivor."""
    return await _card(call, call.path["id"])


@routes.route("POST", "/customers", summary="Create a customer", scopes=WRITE,
              response=CustomerCardOut, status=201, body=CustomerCreate, errors=(409, 422))
async def create_customer(call: Call[CustomerCreate, None]) -> Reply:
    """An address that already leads to a customer is a 409 naming that customer."""
    b = call.body
    for index, identity in enumerate(b.identities):  # name the field that is wrong
        _check_address(Channel(identity.channel), identity.address, call,
                       f"identities.{index}.address")
    customer = await call.core.customers.create(
        identities=[(Channel(i.channel), i.address) for i in b.identities],
        actor=call.principal.actor, name=b.name, language=b.language, timezone=b.timezone,
        tags=sorted(set(b.tags or [])), attributes=b.attributes or {},
        lead_source=b.lead_source)
    return await _card(call, customer.id, 201,
                 {"Location": f"/api/v1/customers/{customer.id}"})


@routes.route("PATCH", "/customers/{id}", summary="Update a customer", scopes=WRITE,
              response=CustomerCardOut, body=CustomerUpdate, errors=(404, 422))
async def update_customer(call: Call[CustomerUpdate, None]) -> Reply:
    """Name, language, time zone, tags and attributes; only the fields given change."""
    fields = call.body.model_dump(include=call.body.model_fields_set)
    if fields.get("tags") is not None:
        fields["tags"] = sorted(set(fields["tags"]))
    for key in ("tags", "attributes"):
        if key in fields and fields[key] is None:
            fields[key] = [] if key == "tags" else {}
    customer = await call.core.customers.update(call.path["id"], actor=call.principal.actor,
                                                **fields)
    return await _card(call, customer.id)


@routes.route("POST", "/customers/{id}/identities", summary="Add an identity", scopes=WRITE,
              response=CustomerCardOut, status=201, body=IdentityIn, errors=(404, 409, 422))
async def add_identity(call: Call[IdentityIn, None]) -> Reply:
    """An address of another customer is a 409: merge the two instead."""
    _check_address(Channel(call.body.channel), call.body.address, call, "address")
    await call.core.customers.add_identity(call.path["id"], Channel(call.body.channel),
                                           call.body.address, actor=call.principal.actor)
    return await _card(call, call.path["id"], 201)


@routes.route("DELETE", "/customers/{id}/identities/{identity_id}", summary="Remove an identity",
              scopes=WRITE, response=CustomerCardOut, errors=(404,))
async def remove_identity(call: Call[None, None]) -> Reply:
    await call.core.customers.remove_identity(call.path["id"], call.path["identity_id"],
                                              actor=call.principal.actor)
    return await _card(call, call.path["id"])


@routes.route("POST", "/customers/{id}/merge", summary="Merge another customer into this one",
              scopes=WRITE, response=CustomerCardOut, body=MergeIn, errors=(404, 409, 422))
async def merge_customer(call: Call[MergeIn, None]) -> Reply:
    """Identities, messages, conversations, tasks and consent of `source_id` move here. A
    `source_id` that does not exist is a 422 naming it; this customer not existing, a 404."""
    await call.core.customers.get(call.path["id"])
    if not await Customer.filter(id=call.body.source_id).exists():
        raise unknown_id("body", "source_id", f"no customer #{call.body.source_id}")
    target = await call.core.customers.merge(call.body.source_id, call.path["id"],
                                             actor=call.principal.actor)
    return await _card(call, target.id)


@routes.route("POST", "/customers/{id}/consent", summary="Record a customer's consent",
              scopes=WRITE, response=ConsentList, body=ConsentIn, errors=(404, 422))
async def change_consent(call: Call[ConsentIn, None]) -> ConsentList:
    """What the customer told you elsewhere (a form, a call): marketing or notifications, on one
    channel or every channel, with the channels' rules applied as if they had said it there
    (marketing by SMS is every message by SMS: its opt-out also stops order updates by SMS, its
    opt-in brings them back). Audited with the key's name; an opt-out emits
    `customer.opted_out`."""
    customer = await call.core.customers.live(call.path["id"])
    word = call.core.consent.start if call.body.granted else call.core.consent.stop
    await word(customer.id, channel(call.body.channel), kind=call.body.kind,
               source=ConsentSource.API, actor=call.principal.actor)
    return ConsentList(consent=consent_out(await call.core.consent.states(customer.id)))


@routes.route("GET", "/customers/{id}/export", summary="Export everything held on a customer",
              scopes=READ, response=ExportOut, errors=(404,))
async def export_customer(call: Call[None, None]) -> ExportOut:
    """The JSON of `crm customers export`, for a data-access request. Audited. It holds every
    message and note, so the key needs `conversations:read` as well."""
    if not call.principal.allows(Scope.CONVERSATIONS_READ):
        raise ApiProblem(403, "missing-scope", f"the key {call.principal.name!r} lacks the scope "
                         "conversations:read (an export holds every message)")
    return ExportOut(await call.core.customers.export(call.path["id"],
                                                      actor=call.principal.actor))


@routes.route("POST", "/customers/{id}/forget", summary="Erase a customer's personal data",
              scopes=WRITE, response=ForgetOut, errors=(404,))
async def forget_customer(call: Call[None, None]) -> ForgetOut:
    """Names, addresses, texts and attributes go; anonymous counts stay. Cannot be undone."""
    counts = await call.core.customers.forget(call.path["id"], actor=call.principal.actor)
    return ForgetOut(counts=counts)

