"""Read models: what the query service (crm/queries.py) hands to every front-end.

Plain frozen values, built from rows; the HTTP API validates its response models from them and
the webhooks serialise them with `to_json`, so a customer or a message looks the same in both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar, cast

from crm import sql
from crm.consent import ConsentState
from crm.types import Channel, ConversationStatus, DeliveryStatus, Direction


@dataclass(frozen=True, slots=True)
class IdentityView:
    id: int
    channel: Channel
    address: str
    display_name: str | None
    undeliverable_reason: str | None
    created_at: datetime | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class CustomerView:
    id: int
    name: str | None
    language: str | None
    timezone: str | None
    tags: list[str]
    attributes: dict[str, Any]
    lead_source: str | None
    created_at: datetime | None
    last_seen_at: datetime | None
    erased_at: datetime | None
    identities: list[IdentityView] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return cast(dict[str, Any], _plain(asdict(self)))


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: int
    customer_id: int
    customer_name: str | None
    status: ConversationStatus
    assignee_id: int | None
    channel: Channel
    subject: str | None
    opened_at: datetime | None
    closed_at: datetime | None
    first_response_due: datetime | None
    last_inbound_at: datetime | None
    last_outbound_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return cast(dict[str, Any], _plain(asdict(self)))


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """How many conversations a customer had, by status, and the latest one."""

    counts: dict[str, int]
    latest: ConversationView | None
    assignee_name: str | None


@dataclass(frozen=True, slots=True)
class CustomerCard:
    """One customer as people and systems read it: identities, consent, conversations."""

    customer: CustomerView
    consent: list[ConsentState]
    conversations: ConversationSummary


@dataclass(frozen=True, slots=True)
class MessageView:
    id: int
    customer_id: int
    conversation_id: int | None
    channel: Channel
    direction: Direction
    text: str
    attachments: list[dict[str, Any]]
    author_kind: str
    author_id: int | None
    status: DeliveryStatus
    error: str | None
    created_at: datetime | None
    sent_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return cast(dict[str, Any], _plain(asdict(self)))


@dataclass(frozen=True, slots=True)
class ManagerView:
    id: int
    name: str
    username: str | None
    role: str
    availability: str
    capacity: int
    active: bool
    email: str | None = None
    telegram_user_id: int | None = None
    has_password: bool = False


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next (None: this was the last)."""

    items: list[T]
    next_cursor: str | None


# Lists build thousands of these a second: a dict lookup is cheaper than calling the enum.
_STATUS = {s.value: s for s in ConversationStatus}
_CHANNEL = {c.value: c for c in Channel}
_DIRECTION = {d.value: d for d in Direction}
_DELIVERY = {d.value: d for d in DeliveryStatus}


def customer_of(row: dict[str, Any], identities: list[IdentityView] | None = None
                ) -> CustomerView:
    return CustomerView(
        id=int(row["id"]), name=row["name"], language=row["language"],
        timezone=row["timezone"], tags=list(json_value(row["tags"]) or []),
        attributes=dict(json_value(row["attributes"]) or {}), lead_source=row["lead_source"],
        created_at=sql.as_datetime(row["created_at"]),
        last_seen_at=sql.as_datetime(row["last_seen_at"]),
        erased_at=sql.as_datetime(row["erased_at"]), identities=identities or [])


def identity_of(row: dict[str, Any]) -> IdentityView:
    return IdentityView(
        id=int(row["id"]), channel=Channel(row["channel"]), address=row["address"],
        display_name=row["display_name"], undeliverable_reason=row["undeliverable_reason"],
        created_at=sql.as_datetime(row["created_at"]),
        last_seen_at=sql.as_datetime(row["last_seen_at"]))


def conversation_of(row: dict[str, Any]) -> ConversationView:
    at = sql.as_datetime
    return ConversationView(
        id=int(row["id"]), customer_id=int(row["customer_id"]),
        customer_name=row.get("customer_name"), status=_STATUS[row["status"]],
        assignee_id=row["assignee_id"], channel=_CHANNEL[row["channel"]], subject=row["subject"],
        opened_at=at(row["opened_at"]), closed_at=at(row["closed_at"]),
        first_response_due=at(row["first_response_due"]),
        last_inbound_at=at(row["last_inbound_at"]), last_outbound_at=at(row["last_outbound_at"]))


def message_of(row: dict[str, Any]) -> MessageView:
    return MessageView(
        id=int(row["id"]), customer_id=int(row["customer_id"]),
        conversation_id=row["conversation_id"], channel=_CHANNEL[row["channel"]],
        direction=_DIRECTION[row["direction"]], text=row["text"],
        attachments=list(json_value(row["attachments"]) or []), author_kind=row["author_kind"],
        author_id=row["author_id"], status=_DELIVERY[row["delivery_status"]],
        error=row["delivery_error"], created_at=sql.as_datetime(row["created_at"]),
        sent_at=sql.as_datetime(row["sent_at"]))


def json_value(value: object) -> Any:
    """A JSON column as Python: SQLite (and asyncpg without a codec) hand back the text."""
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value
