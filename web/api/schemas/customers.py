"""Customers: the card, the list, and what can be written."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, RootModel, field_validator, model_validator

from crm.types import Channel, ConsentKind
from web.api.schemas.common import CustomerChannel, Id, Out, PageQuery, Request
from web.api.schemas.conversations import ConversationOut

Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s,]+$")]
Language = Annotated[str, Field(min_length=2, max_length=8, pattern=r"^[a-z]{2,3}(-[A-Za-z]+)?$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
_MAX_ATTRIBUTES = 16 * 1024


class IdentityOut(Out):
    id: int
    channel: Channel
    address: str
    display_name: str | None
    undeliverable_reason: str | None = Field(
        description="set when the channel refused this address for good (blocked, bounced)")
    created_at: datetime | None
    last_seen_at: datetime | None


class CustomerOut(Out):
    id: int
    name: str | None
    language: str | None
    timezone: str | None
    tags: list[str]
    attributes: dict[str, Any]
    lead_source: str | None
    created_at: datetime | None
    last_seen_at: datetime | None = Field(description="when the customer last wrote")
    erased_at: datetime | None = Field(description="set once `forget` erased the personal data")
    identities: list[IdentityOut]


class ConsentOut(Out):
    kind: ConsentKind
    channel: str | None = Field(description="a channel, or null: every other channel")
    granted: bool
    source: str | None = Field(description="where the word came from; null: the default holds")
    changed_at: datetime | None


class ConversationsSummary(Out):
    counts: dict[str, int] = Field(description="conversations by status")
    latest: ConversationOut | None
    assignee_name: str | None = Field(description="who holds the latest conversation")


class CustomerCardOut(CustomerOut):
    consent: list[ConsentOut]
    conversations: ConversationsSummary


class CustomerList(Out):
    items: list[CustomerOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: "
                                                "this was the last")


class CustomerQuery(PageQuery):
    tag: str | None = Field(default=None, max_length=64, description="customers with this tag")
    channel: CustomerChannel | None = Field(default=None,
                                            description="customers with an address there")
    q: str | None = Field(default=None, min_length=1, max_length=200,
                          description="part of a name or of an address")
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None
    seen_after: AwareDatetime | None = None
    seen_before: AwareDatetime | None = None


class IdentityIn(Request):
    channel: CustomerChannel
    address: str = Field(min_length=1, max_length=320,
                         description="a Telegram user id, an email address, a phone number")


def _zone(value: str | None) -> str | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a time zone name such as Europe/Berlin") from None
    return value


def _attributes(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(json.dumps(value)) > _MAX_ATTRIBUTES:
        raise ValueError(f"at most {_MAX_ATTRIBUTES} bytes of JSON")
    return value


class CustomerFields(Request):
    name: Name | None = None
    language: Language | None = None
    timezone: str | None = Field(default=None, max_length=64, description="e.g. Europe/Berlin")
    tags: list[Tag] | None = Field(default=None, max_length=100)
    attributes: dict[str, Any] | None = Field(default=None,
                                              description="free-form JSON, at most 16 KiB")

    _zone = field_validator("timezone")(_zone)
    _attributes = field_validator("attributes")(_attributes)


class CustomerCreate(CustomerFields):
    lead_source: str | None = Field(default=None, max_length=200)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=20)


class CustomerUpdate(CustomerFields):
    """Only the fields given change; `tags` and `attributes` are replaced as a whole."""

    @model_validator(mode="after")
    def _something(self) -> CustomerUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class MergeIn(Request):
    source_id: Id = Field(description="the customer merged into this one; it stays as a pointer")


class ConsentIn(Request):
    kind: ConsentKind
    granted: bool
    channel: CustomerChannel | None = Field(default=None,
                                            description="null: every channel, also later ones")


class ConsentList(Out):
    consent: list[ConsentOut]


class ForgetOut(Out):
    forgotten: Literal[True] = True
    counts: dict[str, int]


class ExportOut(RootModel[dict[str, Any]]):
    """Everything held on the customer, as `crm customers export` writes it."""
