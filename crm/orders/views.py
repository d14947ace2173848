"""Orders as every front-end reads them (the API, the bot, the status page, webhooks)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from crm import sql
from crm.orders.numbers import from_minor
from crm.views import json_value


@dataclass(frozen=True, slots=True)
class OrderEventView:
    id: int
    status: str
    previous_status: str | None
    source: str
    actor: str
    note: str
    happened_at: datetime | None


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    number: str
    external_number: str | None
    customer_id: int
    status: str
    items: list[dict[str, Any]]
    amount: str | None  # a decimal string in the currency ("49.90")
    currency: str | None
    placed_at: datetime | None
    status_changed_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    events: list[OrderEventView] = field(default_factory=list)

    def to_json(self, *, events: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not events:
            data.pop("events")
        return {k: _plain(v) for k, v in data.items()}


ORDER_COLUMNS = ("o.id, o.number, o.external_number, o.customer_id, o.status, o.items, "
                 "o.amount_minor, o.currency, o.placed_at, o.status_changed_at, o.created_at, "
                 "o.updated_at")
EVENT_COLUMNS = "id, order_id, status, previous_status, source, actor, note, happened_at"


def order_of(row: dict[str, Any], events: list[OrderEventView] | None = None) -> OrderView:
    at = sql.as_datetime
    return OrderView(
        id=int(row["id"]), number=row["number"], external_number=row["external_number"],
        customer_id=int(row["customer_id"]), status=row["status"],
        items=list(json_value(row["items"]) or []),
        amount=from_minor(row["amount_minor"], row["currency"]), currency=row["currency"],
        placed_at=at(row["placed_at"]), status_changed_at=at(row["status_changed_at"]),
        created_at=at(row["created_at"]), updated_at=at(row["updated_at"]),
        events=events or [])


def event_of(row: dict[str, Any]) -> OrderEventView:
    return OrderEventView(
        id=int(row["id"]), status=row["status"], previous_status=row["previous_status"],
        source=row["source"], actor=row["actor"], note=row["note"] or "",
        happened_at=sql.as_datetime(row["happened_at"]))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
