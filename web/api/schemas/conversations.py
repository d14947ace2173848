"""Conversations, messages and the team."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from crm.types import Channel, ConversationStatus, DeliveryStatus, Direction
from web.api.schemas.common import CustomerChannel, Id, Out, PageQuery, Query, Request, Text


class ConversationOut(Out):
    id: int
    customer_id: int
    customer_name: str | None
    status: ConversationStatus = Field(description="open: waiting on us; waiting: on the "
                                                   "customer; closed")
    assignee_id: int | None
    channel: Channel = Field(description="the channel the customer last wrote on")
    subject: str | None
    opened_at: datetime | None
    closed_at: datetime | None
    first_response_due: datetime | None
    last_inbound_at: datetime | None
    last_outbound_at: datetime | None


class MessageOut(Out):
    id: int
    customer_id: int
    conversation_id: int | None
    channel: Channel
    direction: Direction = Field(description="in, out, note (internal) or event (system)")
    text: str = Field(description="as written: plain text, never HTML")
    attachments: list[dict[str, Any]]
    author_kind: str = Field(description="customer, manager, bot, system or api")
    author_id: int | None
    status: DeliveryStatus
    error: str | None = Field(description="why the message failed, when it did")
    created_at: datetime | None
    sent_at: datetime | None


class ConversationList(Out):
    items: list[ConversationOut]
    next_cursor: str | None


class ConversationDetail(ConversationOut):
    messages: list[MessageOut] = Field(description="oldest first, one page")
    messages_next_cursor: str | None = Field(description="pass as ?messages_cursor= for more")


class ConversationQuery(PageQuery):
    status: ConversationStatus | None = None
    assignee_id: Id | None = None
    unassigned: bool = False
    waiting_on_us: bool = Field(default=False, description="open, the customer's last message "
                                                           "unanswered")
    channel: CustomerChannel | None = None
    customer_id: Id | None = None


class ConversationGetQuery(Query):
    messages_limit: int | None = Field(default=None, ge=1, le=1000)
    messages_cursor: str | None = Field(default=None, max_length=500)


class AssignIn(Request):
    manager_id: Id | None = Field(description="a manager's id (GET /managers), or null to "
                                              "unassign")


class NoteIn(Request):
    text: Text


class SendIn(Request):
    text: Text
    channel: CustomerChannel | None = Field(
        default=None, description="default: the channel the customer last wrote on")
    subject: str | None = Field(default=None, max_length=500, description="email only")


class ManagerOut(Out):
    id: int
    name: str
    username: str | None
    role: str
    availability: str
    capacity: int
    active: bool


class ManagerList(Out):
    items: list[ManagerOut]
