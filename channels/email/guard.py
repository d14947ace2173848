"""A cap on automatic mail per address per hour: the last line of defence against mail loops.

Auto-replies that are marked as such never get an answer (channels/email/loops.py). An
auto-responder that marks nothing would still trigger our acknowledgements again and again; this
cap cancels the bot's mail to an address past `auto_reply_cap_per_hour` in the last hour. A
manager's own replies are never capped.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from crm.clock import Clock
from crm.events import MessageQueued
from crm.models import Message, Outbox
from crm.types import Channel, DeliveryStatus, Direction, OutboxState

log = structlog.get_logger(__name__)

AUTOMATIC_AUTHORS = ("bot", "system")


class AutoMailCap:
    """An in-transaction subscriber of MessageQueued: cancels automatic mail over the cap."""

    def __init__(self, cap_per_hour: int, clock: Clock) -> None:
        self.cap = cap_per_hour
        self.clock = clock

    async def __call__(self, event: MessageQueued) -> None:
        if event.channel is not Channel.EMAIL or event.outbox_id is None \
                or event.direction is not Direction.OUT:
            return
        message = await Message.get_or_none(id=event.message_id)
        if message is None or message.author_kind not in AUTOMATIC_AUTHORS:
            return
        since = self.clock() - timedelta(hours=1)
        recent = await Message.filter(
            customer_id=message.customer_id, identity_id=message.identity_id,
            channel=Channel.EMAIL, direction=Direction.OUT,
            author_kind__in=AUTOMATIC_AUTHORS, created_at__gte=since,
        ).exclude(id=message.id).exclude(delivery_status=DeliveryStatus.FAILED).count()
        if recent < self.cap:
            return
        reason = (f"not sent: already {recent} automatic mails to this address in the last hour "
                  f"(auto_reply_cap_per_hour = {self.cap}); a mail loop is likely")
        await Outbox.filter(id=event.outbox_id, state=OutboxState.QUEUED).update(
            state=OutboxState.CANCELLED, last_error=reason)
        await Message.filter(id=message.id).update(delivery_status=DeliveryStatus.FAILED,
                                                   delivery_error=reason)
        log.warning("email.auto_mail_capped", customer_id=message.customer_id,
                    message_id=message.id, cap=self.cap)
