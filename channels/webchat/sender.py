"""The web chat's outbound side: a message to a visitor is "sent" once it is stored for them.

There is nothing to call: the message is in the timeline, and the outbox recording it as sent
(`DeliveryChanged`) is what the visitor's open pages hear, in this process or, on PostgreSQL,
any other (crm/live.py). It is then "delivered" when a page of theirs got it over its event
stream (or in its history), and "read" when that page was on screen (channels/webchat/hub.py,
routes.py). An edit needs no sending either: the edited message goes to open pages as such.
"""

from __future__ import annotations

import uuid

from crm.errors import InvalidAddress
from crm.identity import normalize_visitor
from crm.ports import RateLimits
from crm.types import Channel, DeliveryResult, OutboundMessage


class WebchatSender:
    channel = Channel.WEBCHAT
    edits = True  # an edit reaches the visitor's page as the message, changed

    def __init__(self, per_second: float) -> None:
        self.limits = RateLimits(per_second=per_second)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        if message.options.get("edit_of"):
            return DeliveryResult.sent(None)
        try:
            normalize_visitor(message.address)
        except InvalidAddress as e:
            return DeliveryResult.permanent(str(e))
        return DeliveryResult.sent(f"wc-{message.outbox_id or uuid.uuid4().hex}")
