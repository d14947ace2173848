"""Orders: what a shop sends (PUT, a status) and what it reads back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, model_validator

from web.api.schemas.common import Id, Out, PageQuery, Request

Amount = Annotated[str, Field(pattern=r"^\s*\d[\d\s]*([.,]\d+)?\s*$", max_length=32)] | int | float


class OrderEventOut(Out):
    status: str
    label: str = Field(description="the status as customers read it (English)")
    previous_status: str | None = Field(description="null: the order was placed in `status`")
    source: str = Field(description="api, import, manager or cli")
    actor: str = Field(description="who: api:<key name>, import:<file>, manager:<id>")
    note: str = Field(description="for the team: never shown to the customer")
    happened_at: datetime | None


class OrderOut(Out):
    id: int
    number: str
    external_number: str | None = Field(description="the shop's own number, if different")
    customer_id: int
    status: str
    label: str = Field(description="the status as customers read it (English)")
    final: bool = Field(description="a final status: the order cannot move on")
    items: list[dict[str, Any]]
    amount: str | None = Field(description="a decimal string in the currency: \"49.90\"")
    currency: str | None
    placed_at: datetime | None
    status_changed_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    status_url: str = Field(description="the customer's status page (/o/…): signed, expiring "
                                        "([orders] link_days); shows no personal data")
    events: list[OrderEventOut] = Field(description="the status history, oldest first")


class OrderList(Out):
    items: list[OrderOut]
    next_cursor: str | None


class OrderItemIn(Request):
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    price: Amount | None = Field(default=None, description="per unit, in the order's currency")
    sku: str | None = Field(default=None, max_length=100)


class OrderCustomerIn(Request):
    """Matched by any of its addresses (normalised); created when none leads to a customer."""

    email: str | None = Field(default=None, min_length=3, max_length=320)
    phone: str | None = Field(default=None, min_length=3, max_length=40)
    telegram_id: str | None = Field(default=None, pattern=r"^\d{1,20}$")
    name: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _some_address(self) -> OrderCustomerIn:
        if not (self.email or self.phone or self.telegram_id):
            raise ValueError("give an email, phone or telegram_id")
        return self


class OrderPut(Request):
    """Creates the order or updates the fields given; the status goes through the same rules as
    POST …/status (an event, the customer told once)."""

    customer_id: Id | None = Field(default=None, description="an existing customer, or:")
    customer: OrderCustomerIn | None = None
    status: str | None = Field(default=None, min_length=1, max_length=32,
                               description="a code of [orders]; a new order without one gets "
                                           "the first")
    external_number: str | None = Field(default=None, min_length=1, max_length=100)
    items: list[OrderItemIn] | None = Field(default=None, max_length=500)
    amount: Amount | None = Field(default=None, description="the total, e.g. \"49.90\"")
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    placed_at: AwareDatetime | None = None
    note: str = Field(default="", max_length=2000, description="for the team, with the status")

    @model_validator(mode="after")
    def _one_customer(self) -> OrderPut:
        if self.customer_id is not None and self.customer is not None:
            raise ValueError("give customer_id or customer, not both")
        return self


class StatusIn(Request):
    status: str = Field(min_length=1, max_length=32, description="a code of [orders]")
    note: str = Field(default="", max_length=2000, description="for the team")
    at: AwareDatetime | None = Field(default=None, description="when it happened (default: now)")


class OrderQuery(PageQuery):
    pass
