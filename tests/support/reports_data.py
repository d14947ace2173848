"""A small dataset whose report figures are worked out by hand (tests/crm/reports).

March 2026 (UTC) is the period; February the one before (the previous period of 1–31 March
is 29 January – 1 March: as long, ending where it starts).

Waits: first responses of 1, 2 and 10 minutes in March (median 2 min, p90 504 s: h = 2.8 →
120 + 0.8 × 480), one of 4 minutes in February; a reply of 3 minutes; resolutions of 1 and 3
hours. SLA 5 minutes: 2 of the 3 first responses within it. Surveys: three sent in March,
rated 5 and 3 (CSAT 50%, response rate 2/3). Waiting now: conversation 3.

Orders (EUR cents; one cancelled, one in USD): revenue per customer 50, 20, 10, 10, 5, 5 —
three customers of six (50%) make 80% of it. RFM and cohorts: see the tests.

Campaigns started in March: "Spring sale" (A/B, 6 recipients: Ann telegram A sent after quiet
hours, replied and clicked; Boris email B sent, clicked, opted out; Vera SMS A sent, delivered,
replied; Gleb telegram B failed, blocked; Dina no consent; Egor SMS A opted out before his
message went) and "Survey" (Ann telegram queued; Boris email sent, delivered by a DSN). Also
"Winter" started in February (Gleb, sent) and a draft never started. March: 2 campaigns, 8
recipients, 4 sent, 1 failed, 2 replies, 2 clicks, 2 opt-outs; reply and click rates 2/4,
opt-out rate 2/(4 + 1), failure rate 1/(4 + 1), delivery rate (SMS) 1/1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from crm.models import (
    Campaign,
    CampaignRecipient,
    Conversation,
    Customer,
    Identity,
    Manager,
    Message,
    Order,
    ReportFact,
)
from crm.types import CampaignState, Channel, ConversationStatus, Direction, FactKind

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass
class Seeded:
    olga: Manager
    ivan: Manager
    customers: dict[str, Customer]
    conversations: list[Conversation]
    campaigns: dict[str, Campaign]


async def _customer(name: str, created: datetime, channel: Channel, address: str,
                    source: str | None = None, tags: list[str] | None = None) -> Customer:
    c = await Customer.create(name=name, lead_source=source, tags=tags or [], created_at=created)
    await Identity.create(customer_id=c.id, channel=channel, address=address)
    await Customer.filter(id=c.id).update(created_at=created)
    return c


async def _fact(kind: FactKind, conv: Conversation, manager: Manager | None, start: datetime,
                seconds: int, business: int | None = None) -> None:
    await ReportFact.create(kind=kind, conversation_id=conv.id, customer_id=conv.customer_id,
                            manager_id=manager.id if manager else None,
                            channel=conv.channel.value, started_at=start,
                            ended_at=start + timedelta(seconds=seconds), seconds=seconds,
                            business_seconds=seconds if business is None else business)


async def seed() -> Seeded:
    olga = await Manager.create(telegram_user_id=501, name="Olga")
    ivan = await Manager.create(telegram_user_id=502, name="Ivan")
    ann = await _customer("Ann", at(3, 2), Channel.TELEGRAM, "1001", "ad_spring", ["vip"])
    boris = await _customer("Boris", at(3, 2), Channel.EMAIL, "boris@example.com")
    vera = await _customer("Vera", at(3, 4), Channel.SMS, "+12025550143", "ad_spring",
                           ["vip", "wholesale"])
    gleb = await _customer("Gleb", at(2, 10), Channel.TELEGRAM, "1004")
    dina = await _customer("Dina", at(1, 20), Channel.EMAIL, "dina@example.com")
    egor = await _customer("Egor", at(1, 10), Channel.EMAIL, "egor@example.com")

    async def conv(customer: Customer, channel: Channel, manager: Manager, opened: datetime,
                   **extra: object) -> Conversation:
        c = await Conversation.create(customer_id=customer.id, channel=channel,
                                      assignee_id=manager.id, opened_at=opened, **extra)
        await Conversation.filter(id=c.id).update(opened_at=opened)
        c.opened_at = opened
        return c

    c1 = await conv(ann, Channel.TELEGRAM, olga, at(3, 2, 10, 15),
                    status=ConversationStatus.CLOSED, closed_at=at(3, 2, 11, 15),
                    survey_sent_at=at(3, 2, 12), rating=5, rated_at=at(3, 2, 13))
    c2 = await conv(boris, Channel.EMAIL, olga, at(3, 2, 10, 40),
                    status=ConversationStatus.CLOSED, closed_at=at(3, 2, 13, 40),
                    survey_sent_at=at(3, 3, 12), rating=3, rated_at=at(3, 3, 13))
    c3 = await conv(vera, Channel.SMS, ivan, at(3, 4, 15, 5), status=ConversationStatus.OPEN,
                    survey_sent_at=at(3, 5, 12), waiting_since=at(3, 30, 9))
    c0 = await conv(gleb, Channel.TELEGRAM, ivan, at(2, 10), status=ConversationStatus.CLOSED,
                    closed_at=at(2, 10, 12))

    await _fact(FactKind.FIRST_RESPONSE, c1, olga, c1.opened_at, 60)
    await _fact(FactKind.FIRST_RESPONSE, c2, olga, c2.opened_at, 120)
    await _fact(FactKind.FIRST_RESPONSE, c3, ivan, c3.opened_at, 600)
    await _fact(FactKind.FIRST_RESPONSE, c0, ivan, c0.opened_at, 240)
    await _fact(FactKind.REPLY, c1, olga, at(3, 2, 10, 30), 180)
    await _fact(FactKind.RESOLUTION, c1, olga, c1.opened_at, 3600)
    await _fact(FactKind.RESOLUTION, c2, olga, c2.opened_at, 3 * 3600)

    for customer, when in ((ann, at(3, 2, 10, 15)), (boris, at(3, 2, 10, 40)),
                           (vera, at(3, 4, 15, 5))):
        await Message.create(customer_id=customer.id, direction=Direction.IN,
                             channel=Channel.TELEGRAM, text="hi", created_at=when)
        await Message.filter(customer_id=customer.id).update(created_at=when)

    number = iter(range(1, 100))

    async def order(customer: Customer, euros: int, when: datetime, status: str = "paid",
                    currency: str = "EUR") -> None:
        n = next(number)
        await Order.create(number=f"A-{n}", number_key=f"A-{n}", customer_id=customer.id,
                           status=status, amount_minor=euros * 100, currency=currency,
                           placed_at=when, status_changed_at=when)

    await order(ann, 30, at(1, 5))
    await order(ann, 20, at(3, 30))
    await order(boris, 20, at(3, 25))
    await order(vera, 10, at(3, 20))
    await order(gleb, 10, at(3, 10))
    await order(dina, 5, at(2, 20))
    await order(dina, 7, at(3, 5), currency="USD")
    await order(egor, 5, at(1, 15))
    await order(egor, 100, at(3, 12), status="cancelled")
    return Seeded(olga, ivan, {c.name or "": c for c in (ann, boris, vera, gleb, dina, egor)},
                  [c1, c2, c3, c0], await _campaigns(ann, boris, vera, gleb, dina, egor))


async def _campaigns(ann: Customer, boris: Customer, vera: Customer, gleb: Customer,
                     dina: Customer, egor: Customer) -> dict[str, Campaign]:
    async def campaign(name: str, state: CampaignState, started: datetime | None,
                       winner: str | None = None) -> Campaign:
        return await Campaign.create(name=name, state=state, started_at=started, winner=winner,
                                     start_at=started)

    async def to(c: Campaign, customer: Customer, channel: Channel | None, variant: str | None,
                 state: str, sent: datetime | None = None, **marks: object) -> None:
        await CampaignRecipient.create(campaign_id=c.id, customer_id=customer.id,
                                       channel=channel.value if channel else None,
                                       variant=variant, state=state, sent_at=sent, **marks)

    sale = await campaign("Spring sale", CampaignState.FINISHED, at(3, 10), winner="A")
    sent = at(3, 10, 10, 5)
    await to(sale, ann, Channel.TELEGRAM, "A", "sent", at(3, 11, 9), deferred=True,
             replied_at=at(3, 11, 10), clicked_at=at(3, 11, 9, 30))
    await to(sale, boris, Channel.EMAIL, "B", "sent", sent, clicked_at=at(3, 10, 11),
             opted_out_at=at(3, 10, 12))
    await to(sale, vera, Channel.SMS, "A", "sent", sent, delivered_at=at(3, 10, 10, 6),
             replied_at=at(3, 12))
    await to(sale, gleb, Channel.TELEGRAM, "B", "failed", failed_at=sent,
             error="forbidden: bot was blocked by the user 1004")
    await to(sale, dina, None, "A", "skipped", skip_reason="no_consent")
    await to(sale, egor, Channel.SMS, "A", "skipped", skip_reason="opted_out",
             opted_out_at=at(3, 10, 10, 1))
    survey = await campaign("Survey", CampaignState.SENDING, at(3, 20))
    await to(survey, ann, Channel.TELEGRAM, "A", "queued", queued_at=at(3, 20))
    await to(survey, boris, Channel.EMAIL, "A", "sent", at(3, 20, 10, 1),
             delivered_at=at(3, 20, 10, 2))
    winter = await campaign("Winter", CampaignState.FINISHED, at(2, 15))
    await to(winter, gleb, Channel.TELEGRAM, "A", "sent", at(2, 15, 10, 1))
    draft = await campaign("Draft", CampaignState.DRAFT, None)
    return {c.name: c for c in (sale, survey, winter, draft)}
