"""Orders: create or update with the customer, post a status, read one, list a customer's."""

from __future__ import annotations

from typing import Any

from crm.apikeys import Scope
from crm.orders.numbers import check_currency
from crm.orders.service import CustomerRef, OrderInput
from crm.orders.views import OrderView
from crm.types import Channel
from web.api.customers import page_size
from web.api.routes import Call, Reply, Routes
from web.api.schemas.orders import (
    OrderEventOut,
    OrderList,
    OrderOut,
    OrderPut,
    OrderQuery,
    StatusIn,
)

routes = Routes("orders")
READ, WRITE = (Scope.ORDERS_READ,), (Scope.ORDERS_WRITE,)


async def order_out(call: Call[Any, Any], order: OrderView) -> OrderOut:
    statuses = call.core.orders.statuses
    status = statuses.get(order.status) if order.status in statuses.codes else None
    return OrderOut(
        **{k: v for k, v in order.to_json().items() if k != "events"},
        label=statuses.label(order.status), final=bool(status and status.final),
        status_url=await call.core.orders.link(order.id, order.customer_id),
        events=[OrderEventOut(**{k: getattr(e, k) for k in (
            "status", "previous_status", "source", "actor", "note", "happened_at")},
            label=statuses.label(e.status)) for e in order.events])


def _input(body: OrderPut) -> OrderInput:
    currency = check_currency(body.currency) if body.currency else None
    customer = None
    if body.customer_id is not None:
        customer = CustomerRef(customer_id=body.customer_id)
    elif body.customer is not None:
        c = body.customer
        customer = CustomerRef(identities=tuple(
            (channel, value) for channel, value in ((Channel.EMAIL, c.email),
                                                    (Channel.SMS, c.phone),
                                                    (Channel.TELEGRAM, c.telegram_id))
            if value), name=c.name)
    items = None
    if body.items is not None:
        items = [{k: v for k, v in (("name", i.name), ("quantity", i.quantity),
                                    ("price", str(i.price) if i.price is not None else None),
                                    ("sku", i.sku)) if v is not None} for i in body.items]
    return OrderInput(
        customer=customer, status=body.status, external_number=body.external_number,
        items=items, currency=currency, placed_at=body.placed_at, note=body.note,
        amount=str(body.amount) if body.amount is not None else None)


@routes.route("PUT", "/orders/{number}", summary="Create or update an order", scopes=WRITE,
              response=OrderOut, body=OrderPut, errors=(404, 409, 422))
async def put_order(call: Call[OrderPut, None]) -> Reply:
    """201 when the order is new, 200 when it was updated (or already as given). The customer
    is `customer_id`, or matched by the email, phone or Telegram id in `customer` (created when
    none matches; addresses of two different customers are a 409). A new status is recorded
    and notified as by `POST /orders/{number}/status`."""
    saved = await call.core.orders.put(call.text["number"], _input(call.body), source="api",
                                       actor=call.principal.actor)
    out = await order_out(call, saved.order)
    return Reply(out, 201 if saved.created else 200,
                 {"Location": f"/api/v1/orders/{saved.order.number}"} if saved.created else {})


@routes.route("POST", "/orders/{number}/status", summary="Post an order's status",
              scopes=WRITE, response=OrderOut, body=StatusIn, errors=(404, 409, 422))
async def post_status(call: Call[StatusIn, None]) -> OrderOut:
    """The status it already has changes nothing: the same status posted twice is one event
    and one message to the customer. An unknown status is a 422 listing the known ones; moving
    out of a final status (delivered, cancelled) is a 409."""
    saved = await call.core.orders.set_status(
        call.text["number"], call.body.status, note=call.body.note, at=call.body.at,
        source="api", actor=call.principal.actor)
    return await order_out(call, saved.order)


@routes.route("GET", "/orders/{number}", summary="Get an order", scopes=READ,
              response=OrderOut, errors=(404,))
async def get_order(call: Call[None, None]) -> OrderOut:
    """The order with its status history. The number's case does not matter."""
    return await order_out(call, await call.core.queries.orders.by_number(call.text["number"]))


@routes.route("GET", "/customers/{id}/orders", summary="List a customer's orders",
              scopes=READ, response=OrderList, query=OrderQuery, errors=(400, 404, 422))
async def customer_orders(call: Call[None, OrderQuery]) -> OrderList:
    """Newest first, with their histories; a merged customer's orders are the survivor's."""
    customer_id = await call.core.queries.resolve(call.path["id"])
    page = await call.core.queries.orders.of_customer(
        customer_id, page_size(call, call.query.limit), call.query.cursor)
    return OrderList(items=[await order_out(call, o) for o in page.items],
                     next_cursor=page.next_cursor)
