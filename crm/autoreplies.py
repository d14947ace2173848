"""What the bot says by itself to a customer who wrote to the team, on any channel.

- The after-hours reply ([sla] after_hours_reply): a customer who writes while the team is closed
  is told when we are back, at most once per conversation per `after_hours_reply_period_hours`.
- The acknowledgement ([bot] acknowledge): one "we have your message" per conversation while no
  person has answered it, on the channels configured for it; never after the after-hours reply
  or another answer to the same message.

Automated mail (auto-replies, bounces) never gets either: the dialogue does not call these for
it. Both are written in the unit of work of the customer's message; a customer who cannot be
written to (blocked the bot, a bounced address) still has their message stored.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from crm.conversations import ANSWERING
from crm.errors import SendRejected
from crm.i18n import t
from crm.models import Conversation, Message
from crm.sla import BusinessHours
from crm.types import Channel, Direction

if TYPE_CHECKING:
    from crm.services import Core

log = structlog.get_logger(__name__)


class AutoReplies:
    def __init__(self, core: Core, hours: BusinessHours) -> None:
        self.core = core
        self.hours = hours

    async def after_hours(self, conversation_id: int, message_id: int, channel: Channel,
                          language: str, identity_id: int | None = None) -> bool:
        """The after-hours reply, if the team is closed and it was not sent lately."""
        sla = self.core.settings.sla
        now = self.core.clock()
        if not sla.after_hours_reply or self.hours.is_open(now):
            return False
        conv = await Conversation.get(id=conversation_id)
        last = conv.after_hours_replied_at
        if last is not None and now - last < timedelta(hours=sla.after_hours_reply_period_hours):
            return False
        await Conversation.filter(id=conv.id).update(after_hours_replied_at=now)
        back = self.hours.next_open(now).astimezone(self.hours.zone).strftime("%a %d %b %H:%M")
        return await self._send(conv.customer_id, t("after_hours", language, back=back),
                                channel, key=f"after-hours:{message_id}", kind="after_hours",
                                identity_id=identity_id)

    async def acknowledge(self, conversation_id: int, message_id: int, channel: Channel,
                          language: str, key: str, identity_id: int | None = None) -> bool:
        """One acknowledgement while no person has answered the conversation."""
        if channel.value not in self.core.settings.bot.acknowledge:
            return False
        # One statement decides it, as the common case (acknowledged already) wants.
        if not await Conversation.filter(id=conversation_id, acknowledged=False).update(
                acknowledged=True):
            return False
        answered = await Message.filter(conversation_id=conversation_id, direction=Direction.OUT,
                                        author_kind__in=ANSWERING).exists()
        # Something else (the after-hours reply, an intent's answer) answered this message.
        replied_now = await Message.filter(conversation_id=conversation_id,
                                           direction=Direction.OUT, id__gt=message_id).exists()
        if answered or replied_now:
            return False
        conv = await Conversation.get(id=conversation_id)
        return await self._send(conv.customer_id, t("ack", language), channel,
                                key=f"ack:{key}", kind="ack", identity_id=identity_id)

    async def _send(self, customer_id: int, text: str, channel: Channel, *, key: str,
                    kind: str, identity_id: int | None) -> bool:
        try:
            await self.core.conversations.send(customer_id, text, channel=channel,
                                               identity_id=identity_id, author_kind="bot",
                                               idempotency_key=key, meta={"kind": kind})
        except SendRejected as e:  # blocked the bot and wrote again, a bounced address: kept
            log.info("autoreply.not_sent", kind=kind, customer_id=customer_id, reason=str(e))
            return False
        return True
