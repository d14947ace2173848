"""The sending engine: what the scheduler's campaign tick does (scheduler/__init__.py).

Each tick, for every campaign that is due or sending:

1. A scheduled campaign whose start has come starts: unless it came more than
   `[campaigns] missed_after` ago (the service was down), then it waits as "missed" until
   someone starts it, and its marketer is told; it never blasts hours late.
2. Starting takes the snapshot: the segment is evaluated once and every match stored as a
   recipient, in chunks, idempotently (unique campaign and customer), so a crash halfway
   resumes where it stopped. A/B: each person gets their variant here, by a hash of campaign
   and customer (a resumed expansion assigns the same); the rest wait for the winner.
3. Outcomes come back from the outbox (sent, failed with the reason); when more than the
   error threshold of the last sends failed, the campaign pauses and the marketer is told why.
4. The next recipients are queued (crm/campaigns/feeder.py), keeping a few seconds' worth of
   the channels' rates in the outbox's bulk lane: enough never to starve the channel, few
   enough that a pause or an opt-out catches nearly everything not yet sent.
5. A/B: once the test group is out and the wait is over, the variant with the best reply (or
   click) rate goes to the rest.
6. When nobody is left to queue, the campaign is finished (`campaign.finished`).

Exactly once: a recipient's outbox row, their timeline entry and their new state commit
together; a pause deletes only rows still queued (not claimed) and puts those recipients back;
a restart changes nothing stored. The one resend window is the outbox's own (a send accepted by
the channel, the process killed before it is recorded).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

import structlog
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from crm import sql
from crm.campaigns import feeder
from crm.campaigns.render import Renderer
from crm.campaigns.segments import Segments
from crm.campaigns.spec import CampaignSpec
from crm.clock import Clock, utcnow
from crm.config import Settings
from crm.events import CampaignFinished, EventBus, OutboxQueued, TeamNotice
from crm.i18n import Phrase
from crm.links import Signer
from crm.models import Campaign
from crm.settings_campaigns import parse_quiet_hours
from crm.types import CampaignState, Channel, Priority

log = structlog.get_logger(__name__)

CHUNK = 5000  # recipients stored per statement batch of the expansion
MAX_BATCHES = 20  # per campaign and tick: one busy campaign never holds the others up
ChannelsOf = Callable[[], Collection[Channel]]
RateOf = Callable[[Channel], float | None]


def share_of(campaign_id: int, customer_id: int) -> float:
    """A stable number in [0, 1) per campaign and customer: who is in the A/B test group."""
    digest = hashlib.blake2b(f"{campaign_id}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def variant_of(spec: CampaignSpec, share: float) -> str | None:
    """The variant a person gets at the start; None: they wait for the A/B winner."""
    names = [v.name for v in spec.variants]
    if len(names) == 1 or spec.ab is None:
        return names[0]
    test = spec.ab.test_share
    if share >= test:
        return None
    return names[min(len(names) - 1, int(share / test * len(names)))]


class CampaignEngine:
    def __init__(self, settings: Settings, bus: EventBus, segments: Segments, signer: Signer,
                 channels: ChannelsOf, rate: RateOf, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.bus = bus
        self.segments = segments
        self.signer = signer
        self.channels = channels
        self.rate = rate
        self.clock = clock
        self.config = settings.campaigns
        self._specs: dict[int, tuple[str, CampaignSpec, Renderer]] = {}

    # --- the tick ----------------------------------------------------------------------------

    async def tick(self) -> int:
        """One pass over the campaigns that are due or sending; returns recipients queued."""
        now = self.clock()
        queued = 0
        for campaign in await Campaign.filter(state=CampaignState.SCHEDULED,
                                              start_at__lte=now).order_by("start_at", "id"):
            await self._start(campaign, now)
        for campaign in await Campaign.filter(state__in=[
                CampaignState.SENDING, CampaignState.PAUSED, CampaignState.CANCELLED,
        ]).order_by("id"):
            try:
                if campaign.state is CampaignState.SENDING:
                    queued += await self._drive(campaign, now)
                else:  # what was being sent when it stopped still has its outcome
                    await self._sync(campaign, now, threshold=False)
            except Exception:
                # One campaign's trouble (a template, a bad row) must not stop the others; it
                # is tried again at the next tick.
                log.exception("campaign.tick_failed", campaign_id=campaign.id)
        return queued

    async def _start(self, campaign: Campaign, now: datetime) -> None:
        late = now - (campaign.start_at or now)
        if late > self.config.missed_after_delta:
            when = f"{campaign.start_at:%Y-%m-%d %H:%M} UTC"
            phrase = Phrase("campaign_missed", name=campaign.name, id=campaign.id, at=when,
                            late=_span(late))
            async with self.bus.unit_of_work():
                if await Campaign.filter(id=campaign.id, state=CampaignState.SCHEDULED).update(
                        state=CampaignState.MISSED, state_reason=phrase.render("en")[:500]):
                    await self._tell(campaign, "campaign_missed", phrase, now)
            log.warning("campaign.missed", campaign_id=campaign.id, start_at=when,
                        late_seconds=int(late.total_seconds()))
            return
        segment = await self.segments.get(campaign.segment_id) \
            if campaign.segment_id is not None else None
        filters = segment.filters if segment is not None else campaign.segment_filters
        await Campaign.filter(id=campaign.id, state=CampaignState.SCHEDULED).update(
            state=CampaignState.SENDING, started_at=now, segment_filters=filters or {})
        log.info("campaign.started", campaign_id=campaign.id, late_seconds=int(
            late.total_seconds()))

    async def _drive(self, campaign: Campaign, now: datetime) -> int:
        spec, renderer = await self.prepared(campaign)
        if campaign.expanded_at is None:
            await self.expand(campaign, spec, now)
        if not await self._sync(campaign, now):
            return 0  # paused by the error threshold
        if spec.ab is not None and campaign.winner is None:
            await self._ab(campaign, spec, now)
        queued = await self._feed(campaign, spec, renderer, now)
        await self._finish_if_done(campaign, spec, now)
        return queued

    # --- the snapshot ------------------------------------------------------------------------

    async def expand(self, campaign: Campaign, spec: CampaignSpec, now: datetime) -> int:
        """Store every customer the segment matches now as a recipient (idempotent)."""
        ids = await self.segments.matching_ids(dict(campaign.segment_filters or {}))
        conn = get_connection("default")
        statement = sql.dialect_sql(
            conn, "INSERT INTO campaign_recipient (campaign_id, customer_id, variant, state, "
                  "deferred) VALUES (?, ?, ?, 'pending', ?) "
                  "ON CONFLICT (campaign_id, customer_id) DO NOTHING")
        for start in range(0, len(ids), CHUNK):
            rows = [[campaign.id, cid, variant_of(spec, share_of(campaign.id, cid)), False]
                    for cid in ids[start:start + CHUNK]]
            async with in_transaction() as tx:
                await tx.execute_many(statement, rows)
        total = await sql.fetch(conn, "SELECT COUNT(*) AS n FROM campaign_recipient WHERE "
                                      "campaign_id = ?", [campaign.id])
        campaign.expanded_at, campaign.recipients_total = now, int(total[0]["n"])
        await Campaign.filter(id=campaign.id).update(expanded_at=now,
                                                     recipients_total=campaign.recipients_total)
        log.info("campaign.expanded", campaign_id=campaign.id,
                 recipients=campaign.recipients_total)
        return campaign.recipients_total

    # --- outcomes and the error threshold ----------------------------------------------------

    async def _sync(self, campaign: Campaign, now: datetime, threshold: bool = True) -> bool:
        """Bring the outbox's outcomes to the recipients; False when it paused the campaign."""
        conn = get_connection("default")
        rows = await sql.fetch(
            conn, "SELECT r.id, o.state, o.sent_at, o.last_error FROM campaign_recipient r "
                  "JOIN outbox o ON o.id = r.outbox_id WHERE r.campaign_id = ? AND "
                  "r.state = 'queued' AND o.state IN ('sent', 'failed', 'cancelled')",
            [campaign.id])
        if not rows:
            return True
        sent = [[sql.as_datetime(r["sent_at"]) or now, int(r["id"])] for r in rows
                if r["state"] == "sent"]
        failed = [[(r["last_error"] or "failed")[:500], now, int(r["id"])] for r in rows
                  if r["state"] == "failed"]
        gone = [[int(r["id"])] for r in rows if r["state"] == "cancelled"]
        async with in_transaction() as tx:
            if sent:
                await tx.execute_many(sql.dialect_sql(
                    tx, "UPDATE campaign_recipient SET state = 'sent', sent_at = ? "
                        "WHERE id = ? AND state = 'queued'"), sent)
            if failed:
                await tx.execute_many(sql.dialect_sql(
                    tx, "UPDATE campaign_recipient SET state = 'failed', error = ?, "
                        "failed_at = ? WHERE id = ? AND state = 'queued'"), failed)
            if gone:  # the customer was erased (their queued rows are cancelled)
                await tx.execute_many(sql.dialect_sql(
                    tx, "UPDATE campaign_recipient SET state = 'skipped', skip_reason = "
                        "'erased' WHERE id = ? AND state = 'queued'"), gone)
        if failed and threshold:
            return await self._threshold(campaign, now)
        return True

    async def _threshold(self, campaign: Campaign, now: datetime) -> bool:
        spec, _ = await self.prepared(campaign)
        window = self.config.error_window
        limit = spec.error_threshold or self.config.error_threshold
        recent = await sql.fetch(
            get_connection("default"),
            "SELECT state, error FROM campaign_recipient WHERE campaign_id = ? AND state IN "
            "('sent', 'failed') ORDER BY COALESCE(sent_at, failed_at) DESC, id DESC LIMIT ?",
            [campaign.id, window])
        errors = [str(r["error"] or "") for r in recent if r["state"] == "failed"]
        if len(recent) < window or len(errors) <= limit * len(recent):
            return True
        top, count = Counter(_reason(e) for e in errors).most_common(1)[0]
        phrase = Phrase("campaign_paused_errors", name=campaign.name, id=campaign.id,
                        failed=len(errors), window=len(recent), limit=f"{limit:.0%}",
                        reason=top, count=count)
        await self.pause(campaign.id, phrase, actor="system", now=now)
        log.warning("campaign.paused_on_errors", campaign_id=campaign.id, failed=len(errors),
                    window=len(recent), top_reason=top)
        return False

    # --- A/B -------------------------------------------------------------------------------

    async def _ab(self, campaign: Campaign, spec: CampaignSpec, now: datetime) -> None:
        assert spec.ab is not None
        conn = get_connection("default")
        if campaign.test_sent_at is None:
            left = await sql.fetch(
                conn, "SELECT COUNT(*) AS n FROM campaign_recipient WHERE campaign_id = ? AND "
                      "variant IS NOT NULL AND (state = 'queued' OR (state = 'pending' AND "
                      "(due_at IS NULL OR due_at <= ?)))", [campaign.id, now])
            if int(left[0]["n"]) == 0:
                campaign.test_sent_at = now
                await Campaign.filter(id=campaign.id).update(test_sent_at=now)
                log.info("campaign.ab_test_sent", campaign_id=campaign.id)
            return
        if now < campaign.test_sent_at + spec.ab.wait_delta:
            return
        rows = await sql.fetch(
            conn, "SELECT variant, COUNT(*) AS sent, COUNT(replied_at) AS replied, "
                  "COUNT(clicked_at) AS clicked FROM campaign_recipient WHERE campaign_id = ? "
                  "AND variant IS NOT NULL AND state = 'sent' GROUP BY variant", [campaign.id])
        column = "replied" if spec.ab.metric == "reply_rate" else "clicked"
        rates = {str(r["variant"]): int(r[column]) / int(r["sent"]) for r in rows
                 if int(r["sent"])}
        order = [v.name for v in spec.variants]
        winner = max(order, key=lambda name: (rates.get(name, 0.0), -order.index(name)))
        shown = ", ".join(f"{name} {rates.get(name, 0.0):.1%}" for name in order)
        phrase = Phrase("campaign_winner", name=campaign.name, id=campaign.id, winner=winner,
                        metric=spec.ab.metric.replace("_", " "), rates=shown)
        async with self.bus.unit_of_work():
            await sql.execute(get_connection("default"),
                              "UPDATE campaign_recipient SET variant = ? WHERE campaign_id = ? "
                              "AND variant IS NULL", [winner, campaign.id])
            campaign.winner, campaign.winner_at = winner, now
            await Campaign.filter(id=campaign.id).update(winner=winner, winner_at=now)
            await self._tell(campaign, "campaign_winner", phrase, now)
        log.info("campaign.ab_winner", campaign_id=campaign.id, winner=winner, rates=rates)

    # --- queueing ------------------------------------------------------------------------------

    async def _feed(self, campaign: Campaign, spec: CampaignSpec, renderer: Renderer,
                    now: datetime) -> int:
        available = set(self.channels())
        rules = feeder.Rules(
            channels=[Channel(c) for c in spec.channels if Channel(c) in available],
            quiet=parse_quiet_hours(spec.schedule.quiet_hours
                                    if spec.schedule.quiet_hours is not None
                                    else self.config.quiet_hours),
            default_zone=self.config.timezone or self.settings.sla.timezone,
            marketing_default=self.settings.consent.marketing_default == "granted")
        room = self._window(rules.channels) - await self._queued(campaign.id)
        done = 0
        for _ in range(MAX_BATCHES):
            if room <= 0:
                break
            rows = await feeder.pending(campaign.id, now,
                                        min(room, self.config.batch_size))
            if not rows:
                break
            batch = await feeder.decide(rows, rules, renderer, now)
            channels = await feeder.write(campaign.id, batch, now)
            if channels is None:
                break  # paused or cancelled meanwhile
            for channel in channels:
                await self.bus.emit(OutboxQueued(channel, Priority.BULK))
            room -= len(batch.queued)
            done += len(batch.queued)
        return done

    def _window(self, channels: Collection[Channel]) -> int:
        """How many messages of a campaign may wait in the outbox: about three ticks' worth
        of the channels' rates."""
        rate = sum(self.rate(c) or 0.0 for c in channels)
        return max(100, min(20_000, math.ceil(rate * self.config.tick_seconds * 3)))

    async def _queued(self, campaign_id: int) -> int:
        rows = await sql.fetch(get_connection("default"),
                               "SELECT COUNT(*) AS n FROM campaign_recipient WHERE "
                               "campaign_id = ? AND state = 'queued'", [campaign_id])
        return int(rows[0]["n"])

    # --- the end -------------------------------------------------------------------------------

    async def _finish_if_done(self, campaign: Campaign, spec: CampaignSpec,
                              now: datetime) -> None:
        left = await sql.fetch(
            get_connection("default"),
            "SELECT COUNT(*) AS n FROM campaign_recipient WHERE campaign_id = ? AND "
            "state IN ('pending', 'queued')", [campaign.id])
        if int(left[0]["n"]):
            return
        async with self.bus.unit_of_work():
            if not await Campaign.filter(id=campaign.id, state=CampaignState.SENDING).update(
                    state=CampaignState.FINISHED, finished_at=now, state_reason=None):
                return
            await self.bus.emit(CampaignFinished(campaign.id, campaign.name, now))
            await self._tell(campaign, "campaign_finished",
                             Phrase("campaign_finished", name=campaign.name, id=campaign.id),
                             now)
        self._specs.pop(campaign.id, None)
        log.info("campaign.finished", campaign_id=campaign.id)

    # --- shared with the service ----------------------------------------------------------------

    async def prepared(self, campaign: Campaign) -> tuple[CampaignSpec, Renderer]:
        """The campaign's spec and renderer, made once per version of the spec."""
        version = repr(campaign.spec)
        cached = self._specs.get(campaign.id)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        spec = CampaignSpec.model_validate(campaign.spec)
        renderer = self.renderer(spec, campaign.id, await self.signer.key())
        self._specs[campaign.id] = (version, spec, renderer)
        return spec, renderer

    def renderer(self, spec: CampaignSpec, campaign_id: int, key: bytes = b"") -> Renderer:
        return Renderer(spec, campaign_id, company=self.settings.bot.company_name,
                        public_url=self.settings.http.public_url, key=key,
                        expires_at=self.clock() + timedelta(days=self.config.link_days),
                        paid_broadcast=self.settings.telegram.paid_broadcast)

    async def pause(self, campaign_id: int, reason: Phrase | None, *, actor: str,
                    now: datetime, cancel: bool = False) -> int:
        """Pause (or cancel) a campaign: rows still queued leave the outbox and their
        recipients wait again (or are cancelled); rows being sent finish. Returns how many
        rows were taken back."""
        target = CampaignState.CANCELLED if cancel else CampaignState.PAUSED
        async with self.bus.unit_of_work() as tx:
            campaign = await Campaign.get(id=campaign_id)
            allowed = [CampaignState.SCHEDULED, CampaignState.SENDING]
            if cancel:
                allowed += [CampaignState.DRAFT, CampaignState.MISSED, CampaignState.PAUSED]
            if not await Campaign.filter(id=campaign_id, state__in=allowed).update(
                    state=target, state_reason=reason.render("en")[:500] if reason else None):
                return -1
            lock = " FOR UPDATE OF o SKIP LOCKED" if sql.is_postgres(tx) else ""
            rows = await sql.fetch(
                tx, "SELECT o.id, o.message_id FROM outbox o JOIN campaign_recipient r ON "
                    "r.outbox_id = o.id WHERE r.campaign_id = ? AND r.state = 'queued' AND "
                    f"o.state = 'queued'{lock}", [campaign_id])
            taken: list[int] = []
            for start in range(0, len(rows), 500):
                part = rows[start:start + 500]
                ids = [int(r["id"]) for r in part]
                found = await sql.fetch(
                    tx, f"DELETE FROM outbox WHERE state = 'queued' AND id IN "
                        f"({sql.placeholders(len(ids))}) RETURNING id, message_id", ids)
                taken += [int(r["id"]) for r in found]
                messages = [int(r["message_id"]) for r in found if r["message_id"]]
                if messages:
                    await sql.execute(tx, "DELETE FROM message WHERE id IN "
                                          f"({sql.placeholders(len(messages))})", messages)
                if found:
                    gone = [int(r["id"]) for r in found]
                    await sql.execute(
                        tx, "UPDATE campaign_recipient SET state = 'pending', outbox_id = NULL, "
                            "message_id = NULL, queued_at = NULL, channel = NULL WHERE "
                            f"campaign_id = ? AND outbox_id IN ({sql.placeholders(len(gone))})",
                        [campaign_id, *gone])
            if cancel:
                await sql.execute(tx, "UPDATE campaign_recipient SET state = 'cancelled' "
                                      "WHERE campaign_id = ? AND state = 'pending'",
                                  [campaign_id])
            if reason is not None and actor == "system":
                await self._tell(campaign, "campaign_paused", reason, now)
        log.info("campaign.cancelled" if cancel else "campaign.paused", campaign_id=campaign_id,
                 actor=actor, taken_back=len(taken))
        return len(taken)

    async def _tell(self, campaign: Campaign, kind: str, phrase: Phrase,
                    now: datetime) -> None:
        """A notice to the campaign's marketer in Telegram (if they are one of the team)."""
        if campaign.created_by_id is None:
            return
        await self.bus.emit(TeamNotice.of(
            kind, phrase, key=f"{kind}:{campaign.id}:{now.timestamp():.0f}",
            manager_id=campaign.created_by_id))


def _reason(error: str) -> str:
    """A failure's kind, without the address or ids (crm/metrics.py `short_reason` style)."""
    return error.split(":", 1)[0].strip()[:60] or "failed"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"

