"""What webhook receivers get (crm/webhooks.py writes it): documented under `webhooks`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from crm.types import ConsentKind, WebhookEvent
from web.api.schemas.common import Out
from web.api.schemas.conversations import ConversationOut, MessageOut


class _Event(Out):
    id: str = Field(description="evt_…: the same on every retry, and for every receiver")
    created_at: datetime


class MessageEventData(Out):
    message: MessageOut


class MessageEvent(_Event):
    type: Literal["message.received", "message.sent", "message.failed"]
    data: MessageEventData


class ConversationEventData(Out):
    conversation: ConversationOut
    actor: str | None = Field(default=None, description="who changed it: manager:7, api:shop…")


class ConversationEvent(_Event):
    type: Literal["conversation.opened", "conversation.assigned", "conversation.closed"]
    data: ConversationEventData


class OptOutEventData(Out):
    customer_id: int
    kind: ConsentKind
    channel: str | None = Field(description="the channel, or null: every channel")
    source: str


class OptOutEvent(_Event):
    type: Literal["customer.opted_out"]
    data: OptOutEventData


class OrderEventOrder(Out):
    id: int
    number: str
    external_number: str | None
    customer_id: int
    status: str
    items: list[dict[str, Any]]
    amount: str | None
    currency: str | None
    placed_at: datetime | None
    status_changed_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None


class OrderStatusEventData(Out):
    order: OrderEventOrder
    status: str
    previous_status: str | None = Field(description="null: the order is new")
    source: str = Field(description="api, import, manager or cli")
    actor: str
    note: str
    at: datetime = Field(description="when the order entered the status")


class OrderStatusEvent(_Event):
    type: Literal["order.status_changed"]
    data: OrderStatusEventData


class CampaignRef(Out):
    id: int
    name: str
    winner: str | None = Field(description="the A/B test's winning variant, if it had one")
    finished_at: datetime


class CampaignFigures(Out):
    recipients: int
    pending: int
    queued: int
    sent: int
    delivered: int
    failed: int
    replied: int = Field(description="a message from the customer within 72 hours")
    clicked: int = Field(description="opened a tracked link (/l/…) at least once")
    opted_out: int
    deferred: int = Field(description="waited for the quiet hours to end")
    skipped: dict[str, int] = Field(description="by reason: no_consent, unreachable, "
                                                "opted_out, erased")
    failed_by_reason: dict[str, int]


class CampaignStatsData(Out):
    total: CampaignFigures
    by_channel: dict[str, CampaignFigures] = Field(description="\"none\": no channel chosen")
    by_variant: dict[str, CampaignFigures] = Field(description="\"none\": never sent "
                                                               "(cancelled before the winner)")


class CampaignEventData(Out):
    campaign: CampaignRef
    stats: CampaignStatsData


class CampaignEvent(_Event):
    type: Literal["campaign.finished"]
    data: CampaignEventData


EVENT_MODELS: dict[WebhookEvent, type[_Event]] = {
    WebhookEvent.MESSAGE_RECEIVED: MessageEvent,
    WebhookEvent.MESSAGE_SENT: MessageEvent,
    WebhookEvent.MESSAGE_FAILED: MessageEvent,
    WebhookEvent.CONVERSATION_OPENED: ConversationEvent,
    WebhookEvent.CONVERSATION_ASSIGNED: ConversationEvent,
    WebhookEvent.CONVERSATION_CLOSED: ConversationEvent,
    WebhookEvent.CUSTOMER_OPTED_OUT: OptOutEvent,
    WebhookEvent.ORDER_STATUS_CHANGED: OrderStatusEvent,
    WebhookEvent.CAMPAIGN_FINISHED: CampaignEvent,
}
