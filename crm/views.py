"""Read models: what the query service (crm/queries.py) hands to every front-end.

Plain frozen values, built from rows; the HTTP API validates its response models from them and
the webhooks serialise them with `to_json`, so a customer or a message looks the same in both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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


# No __slots__: the API's list serialises these with orjson (web/api/conversations.py), which
# reads a dataclass's __dict__ in one go but a slotted one attribute by attribute (~3x slower).
@dataclass(frozen=True)
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


# The columns a statement selects for a view, in the order of its fields: lists build their
# views from rows by position (`conversation_from`), with no dict and no name lookup per row.
CONVERSATION_COLUMNS = ("id", "customer_id", "customer_name", "status", "assignee_id",
                        "channel", "subject", "opened_at", "closed_at", "first_response_due",
                        "last_inbound_at", "last_outbound_at")
MESSAGE_COLUMNS = ("id", "customer_id", "conversation_id", "channel", "direction", "text",
                   "attachments", "author_kind", "author_id", "delivery_status",
                   "delivery_error", "created_at", "sent_at")


def conversation_from(r: Sequence[Any]) -> ConversationView:
    """A conversation from a row of CONVERSATION_COLUMNS."""
    at = sql.as_datetime
    return _frozen(ConversationView, {
        "id": r[0], "customer_id": r[1], "customer_name": r[2], "status": _STATUS[r[3]],
        "assignee_id": r[4], "channel": _CHANNEL[r[5]], "subject": r[6], "opened_at": at(r[7]),
        "closed_at": at(r[8]), "first_response_due": at(r[9]), "last_inbound_at": at(r[10]),
        "last_outbound_at": at(r[11])})


def conversation_of(row: dict[str, Any]) -> ConversationView:
    return conversation_from([row.get(c) for c in CONVERSATION_COLUMNS])


def message_from(r: Sequence[Any]) -> MessageView:
    """A message from a row of MESSAGE_COLUMNS."""
    at = sql.as_datetime
    return MessageView(r[0], r[1], r[2], _CHANNEL[r[3]], _DIRECTION[r[4]], r[5],
                       list(json_value(r[6]) or []), r[7], r[8], _DELIVERY[r[9]], r[10],
                       at(r[11]), at(r[12]))


V = TypeVar("V")
_new = object.__new__
_set = object.__setattr__


def _frozen(cls: type[V], fields: dict[str, Any]) -> V:
    """An instance of a frozen dataclass without __slots__, given every field at once.

    The generated __init__ sets each field through object.__setattr__ (a frozen class refuses
    plain assignment): twelve Python calls for a conversation, the larger part of building a
    list's 50. Handing the instance its __dict__ is where those calls end up, in one step; the
    instance is as frozen, equal and hashable as one from __init__ (tests/crm/test_views.py).
    """
    view = _new(cls)
    _set(view, "__dict__", fields)
    return view


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
