"""Webhooks out: core events become outbox rows for the receivers in `[[webhooks]]`.

Each event a receiver subscribed to is one outbox row on the WEBHOOK channel (address: the
receiver's URL), written in the transaction of its cause, so an event is sent only if what caused
it committed, and durably: the dispatcher retries with the outbox's backoff until the receiver
answers 2xx (410 Gone drops the event; at most `[api] webhook_max_attempts` tries: web/webhooks.py
says which answer does what). The body is fixed when the row is written, with an event id
(`evt_…`) shared by every receiver of that event and kept on every retry, so receivers can
dedupe. web/webhooks.py signs and POSTs it.

Later features publish their own events (`order.status_changed`, `campaign.finished`) with
`publish`, after adding them to `WebhookEvent`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

import structlog

from crm.clock import Clock, utcnow
from crm.config import WebhookSettings
from crm.errors import NotFound
from crm.events import (
    CampaignFinished,
    ConsentChanged,
    ConversationChanged,
    DeliveryChanged,
    EventBus,
    MessageReceived,
    OrderStatusChanged,
)
from crm.outbox import OutboxService
from crm.queries import Queries
from crm.types import (
    Channel,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    OutboundMessage,
    Priority,
    WebhookEvent,
)

log = structlog.get_logger(__name__)


def event_body(event_id: str, event: WebhookEvent, created_at: str,
               data: dict[str, Any]) -> str:
    """The JSON a receiver gets, as the exact bytes that are signed (compact, UTF-8)."""
    return json.dumps({"id": event_id, "type": event.value, "created_at": created_at,
                       "data": data}, ensure_ascii=False, separators=(",", ":"))


class Webhooks:
    def __init__(self, bus: EventBus, outbox: OutboxService, queries: Queries,
                 hooks: Sequence[WebhookSettings], clock: Clock = utcnow) -> None:
        self.bus = bus
        self.outbox = outbox
        self.queries = queries
        self.hooks = list(hooks)
        self.clock = clock

    def install(self) -> None:
        for event_type, handler in ((MessageReceived, self._received),
                                    (DeliveryChanged, self._delivery),
                                    (ConversationChanged, self._conversation),
                                    (ConsentChanged, self._consent),
                                    (OrderStatusChanged, self._order),
                                    (CampaignFinished, self._campaign)):
            self.bus.subscribe(event_type, handler, phase="in_transaction")

    def wanted(self, event: WebhookEvent) -> bool:
        return any(h.wants(event) for h in self.hooks)

    async def publish(self, event: WebhookEvent, data: dict[str, Any],
                      customer_id: int | None = None) -> str | None:
        """Queue `event` for every receiver that wants it; call in the cause's unit of work.
        Returns the event id (None: nobody subscribed)."""
        targets = [h for h in self.hooks if h.wants(event)]
        if not targets:
            return None
        event_id = f"evt_{uuid.uuid4().hex}"
        body = event_body(event_id, event, self.clock().isoformat(), data)
        for hook in targets:
            await self.outbox.enqueue(
                OutboundMessage(Channel.WEBHOOK, hook.url, body,
                                options={"event_id": event_id, "event": event.value}),
                idempotency_key=f"webhook:{event_id}:{_short(hook.url)}",
                priority=Priority.NOTIFY, customer_id=customer_id)
        log.debug("webhook.queued", kind=event.value, event_id=event_id, receivers=len(targets))
        return event_id

    async def _received(self, event: MessageReceived) -> None:
        if event.direction is Direction.IN and self.wanted(WebhookEvent.MESSAGE_RECEIVED):
            message = await self.queries.message(event.message_id)
            await self.publish(WebhookEvent.MESSAGE_RECEIVED, {"message": message.to_json()},
                               event.customer_id)
        if (event.new_conversation or event.reopened) and event.conversation_id is not None:
            await self._conversation_event(WebhookEvent.CONVERSATION_OPENED,
                                           event.conversation_id)

    async def _delivery(self, event: DeliveryChanged) -> None:
        if event.message_id is None or event.channel is Channel.WEBHOOK:
            return
        kind = {DeliveryStatus.SENT: WebhookEvent.MESSAGE_SENT,
                DeliveryStatus.FAILED: WebhookEvent.MESSAGE_FAILED}.get(event.status)
        if kind is None or not self.wanted(kind):
            return
        try:
            message = await self.queries.message(event.message_id)
        except NotFound:  # erased meanwhile
            return
        await self.publish(kind, {"message": message.to_json()}, event.customer_id)

    async def _conversation(self, event: ConversationChanged) -> None:
        if event.change == "assigned":
            kind = WebhookEvent.CONVERSATION_ASSIGNED
        elif event.status is ConversationStatus.CLOSED:
            kind = WebhookEvent.CONVERSATION_CLOSED
        elif event.status is ConversationStatus.OPEN:
            kind = WebhookEvent.CONVERSATION_OPENED
        else:
            return
        await self._conversation_event(kind, event.conversation_id, actor=event.actor)

    async def _conversation_event(self, kind: WebhookEvent, conversation_id: int,
                                  actor: str | None = None) -> None:
        if not self.wanted(kind):
            return
        conversation = await self.queries.conversation(conversation_id)
        data: dict[str, Any] = {"conversation": conversation.to_json()}
        if actor is not None:
            data["actor"] = actor
        await self.publish(kind, data, conversation.customer_id)

    async def _consent(self, event: ConsentChanged) -> None:
        if event.granted:
            return
        await self.publish(WebhookEvent.CUSTOMER_OPTED_OUT, {
            "customer_id": event.customer_id, "kind": event.kind.value,
            "channel": None if event.channel == "*" else event.channel,
            "source": event.source}, event.customer_id)


    async def _order(self, event: OrderStatusChanged) -> None:
        if not self.wanted(WebhookEvent.ORDER_STATUS_CHANGED):
            return
        order = await self.queries.orders.by_id(event.order_id)
        if order is None:
            return
        await self.publish(WebhookEvent.ORDER_STATUS_CHANGED, {
            "order": order.to_json(events=False), "status": event.status,
            "previous_status": event.previous_status, "source": event.source,
            "actor": event.actor, "note": event.note,
            "at": event.happened_at.isoformat()}, event.customer_id)


    async def _campaign(self, event: CampaignFinished) -> None:
        if not self.wanted(WebhookEvent.CAMPAIGN_FINISHED):
            return
        from crm.campaigns.results import stats  # the campaigns package builds on this module

        figures = await stats(event.campaign_id)
        await self.publish(WebhookEvent.CAMPAIGN_FINISHED, {
            "campaign": {"id": event.campaign_id, "name": event.name, "winner": figures.winner,
                         "finished_at": event.finished_at.isoformat()},
            "stats": {"total": figures.total.to_json(),
                      "by_channel": {k or "none": v.to_json()
                                     for k, v in figures.by_channel.items()},
                      "by_variant": {k or "none": v.to_json()
                                     for k, v in figures.by_variant.items()}}})


def _short(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]
