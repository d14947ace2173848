"""What came of a campaign: figures per channel and variant, and the events that make them.

- A customer's message within `[campaigns] reply_window_hours` (72) of a campaign message
  marks that recipient replied, and the message itself is marked a reply to the campaign
  (`meta.campaign_reply`), which the timeline and the managers' topic show.
- An opt-out from marketing on a channel (any source: /stop, STOP, the link, the API) takes
  back that customer's campaign messages still queued on it and counts as the opt-out of the
  campaigns they got in the window.
- A click on a tracked link (`/l/<token>`) and a one-click unsubscribe (`/u/<token>`) are
  recorded here; the web pages only render.
- A delivery report (SMS DLR) marks the recipient delivered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection

from crm import sql
from crm.campaigns.render import LINK_PURPOSE, UNSUBSCRIBE_PURPOSE, tracked_urls
from crm.campaigns.spec import CampaignSpec
from crm.clock import Clock, utcnow
from crm.consent import CUSTOMER_CHANNELS, EVERY_CHANNEL, Consents
from crm.errors import NotFound
from crm.events import RECORD, ConsentChanged, DeliveryChanged, EventBus, MessageReceived
from crm.links import LinkTampered, Signer
from crm.models import Campaign, CampaignRecipient, Customer, Message
from crm.settings_campaigns import CampaignsSettings
from crm.types import Channel, ConsentKind, ConsentSource, DeliveryStatus, Direction

log = structlog.get_logger(__name__)


@dataclass
class Figures:
    """The counts of one slice of a campaign (a channel, a variant, or the whole)."""

    recipients: int = 0
    pending: int = 0
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    replied: int = 0
    clicked: int = 0
    opted_out: int = 0
    deferred: int = 0  # waited for quiet hours to end (some may still wait)
    skipped: dict[str, int] = field(default_factory=dict)  # by reason
    failed_by_reason: dict[str, int] = field(default_factory=dict)

    def add(self, other: Figures) -> None:
        for name in ("recipients", "pending", "queued", "sent", "delivered", "failed",
                     "replied", "clicked", "opted_out", "deferred"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.skipped, other.skipped),
                             (self.failed_by_reason, other.failed_by_reason)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n

    def to_json(self) -> dict[str, Any]:
        return {k: (dict(sorted(v.items())) if isinstance(v, dict) else v)
                for k, v in self.__dict__.items()}


@dataclass
class Stats:
    campaign_id: int
    name: str
    state: str
    reason: str | None
    winner: str | None
    total: Figures
    by_channel: dict[str, Figures]  # "" : not assigned a channel (skipped, pending)
    by_variant: dict[str, Figures]  # "" : waiting for the A/B winner

    def to_json(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "name": self.name, "state": self.state,
                "reason": self.reason, "winner": self.winner, "total": self.total.to_json(),
                "by_channel": {k or "none": v.to_json() for k, v in self.by_channel.items()},
                "by_variant": {k or "none": v.to_json() for k, v in self.by_variant.items()}}


def reason_of(error: str | None) -> str:
    """A failure's kind without addresses or ids ("forbidden: bot was blocked" → forbidden)."""
    return (error or "failed").split(":", 1)[0].strip()[:60] or "failed"


Slices = dict[tuple[str, str], Figures]  # (channel, variant) → figures; "" for none yet


async def slices(conn: BaseDBAsyncClient, campaign_ids: Sequence[int]) -> dict[int, Slices]:
    """The figures of each campaign by channel and variant, counted in SQL: what `stats`
    shows, and the campaigns report (crm/reports/campaigns.py) too."""
    out: dict[int, Slices] = {cid: {} for cid in campaign_ids}
    if not campaign_ids:
        return out
    ids = sql.placeholders(len(campaign_ids))
    rows = await sql.fetch(
        conn, "SELECT campaign_id, channel, variant, state, skip_reason, COUNT(*) AS n, "
              "SUM(CASE WHEN deferred THEN 1 ELSE 0 END) AS deferred, "
              "COUNT(delivered_at) AS delivered, COUNT(replied_at) AS replied, "
              "COUNT(clicked_at) AS clicked, COUNT(opted_out_at) AS opted_out "
              f"FROM campaign_recipient WHERE campaign_id IN ({ids}) "
              "GROUP BY campaign_id, channel, variant, state, skip_reason", list(campaign_ids))
    errors = await sql.fetch(
        conn, "SELECT campaign_id, channel, variant, error, COUNT(*) AS n FROM "
              f"campaign_recipient WHERE campaign_id IN ({ids}) AND state = 'failed' "
              "GROUP BY campaign_id, channel, variant, error", list(campaign_ids))
    for r in rows:
        f = out[int(r["campaign_id"])].setdefault((r["channel"] or "", r["variant"] or ""),
                                                  Figures())
        n = int(r["n"])
        f.recipients += n
        state = str(r["state"])
        if state == "skipped":
            reason = str(r["skip_reason"] or "unknown")
            f.skipped[reason] = f.skipped.get(reason, 0) + n
        elif state in ("pending", "queued", "sent", "failed"):
            setattr(f, state, getattr(f, state) + n)
        f.deferred += int(r["deferred"] or 0)
        for name in ("delivered", "replied", "clicked", "opted_out"):
            setattr(f, name, getattr(f, name) + int(r[name] or 0))
    for r in errors:
        f = out[int(r["campaign_id"])].setdefault((r["channel"] or "", r["variant"] or ""),
                                                  Figures())
        reason = reason_of(r["error"])
        f.failed_by_reason[reason] = f.failed_by_reason.get(reason, 0) + int(r["n"])
    return out


def totals(parts: Slices) -> tuple[Figures, dict[str, Figures], dict[str, Figures]]:
    """The whole, by channel and by variant, of a campaign's slices."""
    total = Figures()
    by_channel: dict[str, Figures] = {}
    by_variant: dict[str, Figures] = {}
    for (channel, variant), f in sorted(parts.items()):
        total.add(f)
        by_channel.setdefault(channel, Figures()).add(f)
        by_variant.setdefault(variant, Figures()).add(f)
    return total, by_channel, by_variant


async def stats(campaign_id: int) -> Stats:
    campaign = await Campaign.get_or_none(id=campaign_id)
    if campaign is None:
        raise NotFound(f"campaign #{campaign_id} does not exist (crm campaigns list)")
    found = await slices(get_connection("default"), [campaign_id])
    total, by_channel, by_variant = totals(found[campaign_id])
    return Stats(campaign.id, campaign.name, campaign.state.value, campaign.state_reason,
                 campaign.winner, total, by_channel, by_variant)


class Results:
    """Records replies, opt-outs, clicks and deliveries; installed on the bus once."""

    def __init__(self, bus: EventBus, consent: Consents, signer: Signer,
                 settings: CampaignsSettings, clock: Clock = utcnow) -> None:
        self.bus = bus
        self.consent = consent
        self.signer = signer
        self.settings = settings
        self.clock = clock

    def install(self) -> None:
        # Before the managers' chat records the message, so the topic shows it as a reply.
        self.bus.subscribe(MessageReceived, self._received, phase="in_transaction",
                           order=RECORD - 10)
        self.bus.subscribe(ConsentChanged, self._consent, phase="in_transaction")
        self.bus.subscribe(DeliveryChanged, self._delivered, phase="after_commit")

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.settings.reply_window_hours)

    async def _received(self, event: MessageReceived) -> None:
        if event.direction is not Direction.IN or event.automated or event.command is not None:
            return
        now = self.clock()
        since = now - self.window
        conn = get_connection("default")
        rows = await sql.fetch(
            conn, "SELECT r.id, r.campaign_id, r.replied_at FROM campaign_recipient r "
                  "LEFT JOIN outbox o ON o.id = r.outbox_id WHERE r.customer_id = ? AND "
                  "((r.state = 'sent' AND r.sent_at >= ?) OR (r.state = 'queued' AND "
                  "o.state = 'sent' AND o.sent_at >= ?)) ORDER BY r.id DESC LIMIT 1",
            [event.customer_id, since, since])
        if not rows or rows[0]["replied_at"] is not None:
            return
        if not await CampaignRecipient.filter(id=int(rows[0]["id"]), replied_at=None).update(
                replied_at=now):
            return
        campaign = await Campaign.get(id=int(rows[0]["campaign_id"]))
        message = await Message.get(id=event.message_id)
        message.meta = {**message.meta, "campaign_reply": {"id": campaign.id,
                                                           "name": campaign.name}}
        await message.save(update_fields=["meta"])
        log.info("campaign.reply", campaign_id=campaign.id, customer_id=event.customer_id)

    async def _consent(self, event: ConsentChanged) -> None:
        if event.kind is not ConsentKind.MARKETING or event.granted:
            return
        channels = [c.value for c in CUSTOMER_CHANNELS] if event.channel == EVERY_CHANNEL \
            else [event.channel]
        now = self.clock()
        conn = get_connection("default")
        marks = sql.placeholders(len(channels))
        rows = await sql.fetch(
            conn, "SELECT o.id, o.message_id FROM outbox o JOIN campaign_recipient r ON "
                  "r.outbox_id = o.id WHERE r.customer_id = ? AND r.state = 'queued' AND "
                  f"o.state = 'queued' AND r.channel IN ({marks})",
            [event.customer_id, *channels])
        if rows:
            ids = [int(r["id"]) for r in rows]
            found = await sql.fetch(conn, "DELETE FROM outbox WHERE state = 'queued' AND id IN "
                                          f"({sql.placeholders(len(ids))}) RETURNING id, "
                                          "message_id", ids)
            gone = [int(r["id"]) for r in found]
            messages = [int(r["message_id"]) for r in found if r["message_id"]]
            if messages:
                await sql.execute(conn, "DELETE FROM message WHERE id IN "
                                        f"({sql.placeholders(len(messages))})", messages)
            if gone:
                await sql.execute(
                    conn, "UPDATE campaign_recipient SET state = 'skipped', skip_reason = "
                          "'opted_out', opted_out_at = ?, outbox_id = NULL, message_id = NULL "
                          f"WHERE outbox_id IN ({sql.placeholders(len(gone))})", [now, *gone])
                log.info("campaign.opt_out_taken_back", customer_id=event.customer_id,
                         rows=len(gone))
        await sql.execute(
            conn, "UPDATE campaign_recipient SET opted_out_at = ? WHERE customer_id = ? AND "
                  "opted_out_at IS NULL AND state IN ('queued', 'sent') AND queued_at >= ? "
                  f"AND channel IN ({marks})",
            [now, event.customer_id, now - self.window, *channels])

    async def _delivered(self, event: DeliveryChanged) -> None:
        if event.status not in (DeliveryStatus.DELIVERED, DeliveryStatus.READ) \
                or event.message_id is None:
            return
        await CampaignRecipient.filter(message_id=event.message_id, delivered_at=None).update(
            delivered_at=self.clock())

    # --- the public links -----------------------------------------------------------------

    async def _recipient(self, purpose: str, token: str) -> tuple[CampaignRecipient, str]:
        payload = await self.signer.verify(purpose, token)
        head, _, tail = payload.partition(".")
        if not head.isdigit():
            raise LinkTampered("not a link we made")
        recipient = await CampaignRecipient.get_or_none(id=int(head))
        if recipient is None:
            raise NotFound("this campaign is no longer kept")
        return recipient, tail

    async def click(self, token: str) -> str:
        """Where a tracked link leads; the first click of each person is counted."""
        recipient, index = await self._recipient(LINK_PURPOSE, token)
        campaign = await Campaign.get(id=recipient.campaign_id)
        urls = tracked_urls(CampaignSpec.model_validate(campaign.spec))
        if not index.isdigit() or int(index) >= len(urls):
            raise LinkTampered("not a link we made")
        if await CampaignRecipient.filter(id=recipient.id, clicked_at=None).update(
                clicked_at=self.clock()):
            log.info("campaign.click", campaign_id=campaign.id, link=int(index))
        return urls[int(index)]

    async def unsubscribe_page(self, token: str) -> tuple[str, Channel]:
        """For the confirmation page: the reader's language and the channel it stops.
        Changes nothing (mail scanners open links)."""
        recipient, _ = await self._recipient(UNSUBSCRIBE_PURPOSE, token)
        customer = await Customer.get(id=recipient.customer_id)
        return customer.language or "", Channel(recipient.channel or Channel.EMAIL.value)

    async def unsubscribe(self, token: str) -> tuple[str, Channel]:
        """The one-click unsubscribe (RFC 8058): marketing stops on the recipient's channel."""
        recipient, _ = await self._recipient(UNSUBSCRIBE_PURPOSE, token)
        channel = Channel(recipient.channel or Channel.EMAIL.value)
        customer = await Customer.get(id=recipient.customer_id)
        async with self.bus.unit_of_work():
            await self.consent.change(recipient.customer_id, ConsentKind.MARKETING, False,
                                      channel=channel, source=ConsentSource.LINK,
                                      actor="customer:link")
            await CampaignRecipient.filter(id=recipient.id, opted_out_at=None).update(
                opted_out_at=self.clock())
        return customer.language or "", channel


def top_reasons(errors: list[str], n: int = 3) -> list[tuple[str, int]]:
    return Counter(reason_of(e) for e in errors).most_common(n)


def since(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"
