"""Campaign recipients follow their customer (crm/customers.py `CustomerData`).

A merge moves the rows; where both customers were in the same campaign the survivor keeps its
own row and the other goes (one person, one message per campaign). Forgetting keeps the rows,
which say nothing personal, so a campaign's figures stay honest; rows not sent yet are
cancelled, so nothing more goes to an erased customer.
"""

from __future__ import annotations

from typing import Any

from crm.models import Campaign, CampaignRecipient
from crm.types import RecipientState, SkipReason


class RecipientData:
    model = CampaignRecipient

    async def move(self, source_id: int, target_id: int) -> dict[str, int]:
        theirs = set(await CampaignRecipient.filter(customer_id=target_id).values_list(
            "campaign_id", flat=True))
        if theirs:
            await CampaignRecipient.filter(customer_id=source_id,
                                           campaign_id__in=list(theirs)).delete()
        moved = await CampaignRecipient.filter(customer_id=source_id).update(
            customer_id=target_id)
        return {"campaign_recipients": moved}

    async def export(self, customer_id: int) -> dict[str, Any]:
        rows = await CampaignRecipient.filter(customer_id=customer_id).order_by("id")
        names = dict(await Campaign.filter(id__in=[r.campaign_id for r in rows]).values_list(
            "id", "name"))
        return {"campaigns": [{
            "campaign_id": r.campaign_id, "campaign": names.get(r.campaign_id),
            "variant": r.variant, "channel": r.channel, "state": r.state.value,
            "skip_reason": r.skip_reason,
            **{k: (v.isoformat() if v else None) for k, v in (
                ("sent_at", r.sent_at), ("delivered_at", r.delivered_at),
                ("replied_at", r.replied_at), ("clicked_at", r.clicked_at),
                ("opted_out_at", r.opted_out_at))}} for r in rows]}

    async def forget(self, customer_id: int) -> dict[str, int]:
        count = await CampaignRecipient.filter(
            customer_id=customer_id, state=RecipientState.PENDING).update(
            state=RecipientState.SKIPPED, skip_reason=SkipReason.ERASED.value)
        return {"campaign_recipients": count}
