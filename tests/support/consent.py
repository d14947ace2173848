"""Reading a customer's consent in tests, as the service would (with the default settings)."""

from __future__ import annotations

from crm.config import ConsentSettings
from crm.consent import Consents
from crm.events import EventBus
from crm.types import Channel, ConsentKind


async def takes_marketing(customer_id: int, channel: Channel) -> bool:
    return await Consents(EventBus(), ConsentSettings()).allows(
        customer_id, ConsentKind.MARKETING, channel)
