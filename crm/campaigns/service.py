"""Campaigns as the CLI, the API, the bot's wizard and the web console use them: one service.

Create (a draft, checked: the segment exists, every template renders, the image is stored),
change a draft (the console's editor), preview (who and how many on each channel, a message
per channel for one of the segment's customers, SMS segments, the paid broadcast's cost; also
of a campaign as written, before it is stored), test (to the marketer first), schedule, pause,
resume, cancel, stats, and the results over time.
Only marketers and admins create and schedule (a manager of another role is refused); API keys
with `campaigns:write` and the command line act as admins.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from crm.campaigns import feeder
from crm.campaigns.activity import Activity, activity
from crm.campaigns.engine import CampaignEngine
from crm.campaigns.render import NO_ORDER, SAMPLE, Person, context
from crm.campaigns.results import Results, Stats, stats
from crm.campaigns.segments import Preview, Segments
from crm.campaigns.spec import CampaignSpec, parse_spec
from crm.clock import Clock, utcnow
from crm.config import Settings
from crm.consent import Consents
from crm.errors import Conflict, CrmError, InvalidField, NotFound
from crm.events import EventBus
from crm.files import FileStore
from crm.i18n import Phrase
from crm.models import AuditLog, Campaign, Customer, Manager, Segment
from crm.outbox import OutboxService
from crm.sms_encoding import segment
from crm.templates import TemplateProblem, render
from crm.types import CampaignState, Channel, OutboundMessage, Priority, Role

log = structlog.get_logger(__name__)

STARS_PER_MESSAGE = 0.1  # Telegram's price of a paid broadcast message
MARKETING_ROLES = (Role.MARKETER, Role.ADMIN)
MAX_IMAGE = 10 * 1024 * 1024  # a photo Telegram takes from a bot


class NotAllowed(CrmError):
    """The person may not do this (a manager who is neither marketer nor admin)."""


@dataclass(frozen=True, slots=True)
class ChannelSample:
    channel: str
    variant: str
    subject: str | None
    text: str
    html: str | None
    sms_segments: int | None = None
    sms_encoding: str | None = None


@dataclass(frozen=True, slots=True)
class CampaignPreview:
    campaign_id: int
    name: str
    state: str
    segment: Preview
    reach: dict[str, int]  # per channel, then "no_consent" and "unreachable"
    samples: tuple[ChannelSample, ...]
    start_at: datetime | None
    quiet_hours: str
    ab: str | None  # "B and C, 20% test, reply rate after 4h"
    paid_broadcast: bool
    stars: float | None  # the paid broadcast's cost at most, in Telegram Stars
    warnings: tuple[str, ...]
    # The customer the samples are written for (one of the segment's); None: a made-up one.
    sample_for: int | None = None


class Campaigns:
    def __init__(self, settings: Settings, bus: EventBus, outbox: OutboxService,
                 consent: Consents, segments: Segments, engine: CampaignEngine,
                 results: Results, files: FileStore, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.bus = bus
        self.outbox = outbox
        self.consent = consent
        self.segments = segments
        self.engine = engine
        self.results = results
        self.files = files
        self.clock = clock

    # --- making one --------------------------------------------------------------------------

    async def create(self, raw: dict[str, Any], *, actor: str, by: Manager | None = None,
                     base_dir: Path | None = None) -> Campaign:
        """A draft campaign from what was written; InvalidField naming what is wrong."""
        if by is not None:
            self.allowed(by)
        spec, segment, marketer = await self._checked(raw, by, base_dir)
        campaign = await Campaign.create(
            name=spec.name, segment_id=segment.id, spec=spec.to_json(),
            segment_filters=segment.filters, start_at=spec.schedule.start(),
            created_by_id=marketer.id if marketer else None, actor=actor[:200])
        await AuditLog.create(actor=actor[:200], action="campaign.created",
                              detail={"campaign_id": campaign.id, "name": spec.name})
        log.info("campaign.created", campaign_id=campaign.id, actor=actor)
        return campaign

    async def update(self, campaign_id: int, raw: dict[str, Any], *, actor: str,
                     by: Manager | None = None, base_dir: Path | None = None) -> Campaign:
        """A draft written again (the console's editor), checked as `create` checks it. Only a
        draft: once scheduled, what goes out is what was previewed and tested."""
        if by is not None:
            self.allowed(by)
        campaign = await self.get(campaign_id)
        if campaign.state is not CampaignState.DRAFT:
            raise Conflict(f"campaign #{campaign.id} is {campaign.state.value}: only a draft "
                           "can be changed")
        spec, segment, marketer = await self._checked(raw, by, base_dir)
        changed = await Campaign.filter(id=campaign.id, state=CampaignState.DRAFT).update(
            name=spec.name, segment_id=segment.id, spec=spec.to_json(),
            segment_filters=segment.filters, start_at=spec.schedule.start(),
            created_by_id=marketer.id if marketer else campaign.created_by_id)
        if not changed:  # scheduled meanwhile
            raise Conflict(f"campaign #{campaign.id} is no longer a draft")
        await AuditLog.create(actor=actor[:200], action="campaign.changed",
                              detail={"campaign_id": campaign.id, "name": spec.name})
        log.info("campaign.changed", campaign_id=campaign.id, actor=actor)
        return await self.get(campaign.id)

    async def _checked(self, raw: dict[str, Any], by: Manager | None,
                       base_dir: Path | None) -> tuple[CampaignSpec, Segment, Manager | None]:
        spec = parse_spec(raw)
        segment = await self._segment(spec)
        marketer = by
        if spec.marketer is not None and marketer is None:
            marketer = await Manager.get_or_none(telegram_user_id=spec.marketer, active=True)
            if marketer is None or marketer.role not in MARKETING_ROLES:
                raise InvalidField("marketer", f"{spec.marketer} is not a marketer or admin of "
                                               "the team (crm managers add … --role marketer)")
        spec = self._with_images(spec, base_dir or Path.cwd())
        check_templates(spec, self.settings.bot.company_name)
        return spec, segment, marketer

    async def _segment(self, spec: CampaignSpec) -> Segment:
        try:
            return await self.segments.get(spec.segment)
        except NotFound:
            raise InvalidField("segment", f"no segment {spec.segment!r}: create it first "
                                          "(crm segments create FILE.toml)") from None

    def allowed(self, manager: Manager) -> None:
        if manager.role not in MARKETING_ROLES:
            raise NotAllowed("Only marketers and admins create and schedule campaigns (crm "
                             "managers add … --role marketer).")

    def _with_images(self, spec: CampaignSpec, base: Path) -> CampaignSpec:
        variants = []
        for i, variant in enumerate(spec.variants):
            content = variant.telegram
            if content is None or not content.image or content.image_file:
                variants.append(variant)
                continue
            path = Path(content.image)
            path = path if path.is_absolute() else base / path
            where = f"variants[{i}].telegram.image"
            try:
                data = path.read_bytes()
            except OSError as e:
                raise InvalidField(where, f"cannot read {path}: {e.strerror or e}") from None
            if not data or len(data) > MAX_IMAGE:
                raise InvalidField(where, f"{path.name}: an image of 1 byte to 10 MB")
            mime = mimetypes.guess_type(path.name)[0] or "image/jpeg"
            stored = self.files.save(data, kind="photo", filename=path.name, mime_type=mime)
            variants.append(variant.model_copy(update={"telegram": content.model_copy(
                update={"image_file": stored.to_json()})}))
        return spec.model_copy(update={"variants": variants})

    # --- reading -------------------------------------------------------------------------------

    async def get(self, campaign_id: int) -> Campaign:
        campaign = await Campaign.get_or_none(id=campaign_id)
        if campaign is None:
            raise NotFound(f"campaign #{campaign_id} does not exist (crm campaigns list)")
        return campaign

    async def all(self, limit: int = 50) -> list[Campaign]:
        return await Campaign.all().order_by("-id").limit(limit)

    async def stats(self, campaign_id: int) -> Stats:
        return await stats(campaign_id)

    async def activity(self, campaign_id: int) -> Activity:
        """Sends, replies, clicks and opt-outs over time (crm/campaigns/activity.py)."""
        return await activity(campaign_id, self.clock())

    async def preview(self, campaign_id: int,
                      customer_id: int | None = None) -> CampaignPreview:
        """The campaign as its customers would get it now; the messages are written for
        `customer_id` when the segment holds them, else for the first of its sample."""
        campaign = await self.get(campaign_id)
        spec = CampaignSpec.model_validate(campaign.spec)
        filters = dict(campaign.segment_filters or {})
        if campaign.state in (CampaignState.DRAFT, CampaignState.SCHEDULED,
                              CampaignState.MISSED) and campaign.segment_id is not None:
            filters = (await self.segments.get(campaign.segment_id)).filters
        return await self._preview(spec, filters, campaign.id, campaign.name,
                                   campaign.state.value, campaign.start_at, customer_id)

    async def preview_draft(self, raw: dict[str, Any],
                            customer_id: int | None = None) -> CampaignPreview:
        """A campaign as written, before it is stored (the console's editor, as the marketer
        types): InvalidField when it cannot be one; a template that does not render for the
        customer is a warning, as in `preview`. Nothing is stored."""
        spec = parse_spec(raw)
        segment = await self._segment(spec)
        return await self._preview(spec, segment.filters, 0, spec.name,
                                   CampaignState.DRAFT.value, spec.schedule.start(),
                                   customer_id)

    async def _preview(self, spec: CampaignSpec, filters: dict[str, Any], campaign_id: int,
                       name: str, state: str, start_at: datetime | None,
                       customer_id: int | None) -> CampaignPreview:
        segment_preview = await self.segments.preview(filters)
        reach = await self._reach(spec, await self.segments.matching_ids(filters))
        chosen = segment_preview.sample[0].id if segment_preview.sample else None
        if customer_id is not None and await self.segments.contains(filters, customer_id):
            chosen = customer_id
        person = await self._person(chosen) if chosen is not None else SAMPLE
        samples, warnings = self._samples(spec, person)
        paid = self.settings.telegram.paid_broadcast
        quiet = spec.schedule.quiet_hours if spec.schedule.quiet_hours is not None \
            else self.settings.campaigns.quiet_hours
        ab = None
        if spec.ab is not None:
            ab = (f"variants {', '.join(v.name for v in spec.variants)}: "
                  f"{spec.ab.test_share:.0%} test, the best {spec.ab.metric.replace('_', ' ')}"
                  f" after {spec.ab.wait} goes to the rest")
        return CampaignPreview(
            campaign_id, name, state, segment_preview, reach, tuple(samples), start_at,
            quiet or "none", ab, paid,
            round(reach.get("telegram", 0) * STARS_PER_MESSAGE, 1) if paid else None,
            tuple(warnings), chosen)

    async def _reach(self, spec: CampaignSpec, ids: list[int]) -> dict[str, int]:
        """Who would get it on which channel now (the rule the sending uses)."""
        rules = feeder.Rules([Channel(c) for c in spec.channels], None, "UTC",
                             self.settings.consent.marketing_default == "granted")
        counts = {c: 0 for c in spec.channels} | {"no_consent": 0, "unreachable": 0}
        for start in range(0, len(ids), 5000):
            part = ids[start:start + 5000]
            identities = await feeder.reachable(part)
            consents = await feeder.marketing_consents(part)
            for cid in part:
                chosen, refused = feeder.choose(identities.get(cid, []),
                                                consents.get(cid, []), rules)
                key = chosen.channel.value if chosen else \
                    "no_consent" if refused else "unreachable"
                counts[key] += 1
        return counts

    async def _person(self, customer_id: int) -> Person:
        """The customer as the engine hands them to the templates, their last order too."""
        customer = await Customer.get(id=customer_id)
        orders = await feeder.last_orders([customer.id])
        return Person(customer.id, customer.name, customer.language, tuple(customer.tags),
                      dict(customer.attributes), customer.lead_source,
                      orders.get(customer.id, dict(NO_ORDER)))

    def _samples(self, spec: CampaignSpec,
                 person: Person) -> tuple[list[ChannelSample], list[str]]:
        renderer = self.engine.renderer(spec, 0, b"preview")
        samples, warnings = [], []
        max_segments = self.settings.sms.max_segments
        for variant in spec.variants:
            for channel in spec.channels:
                try:
                    message = renderer.message(Channel(channel), variant.name, person, 0,
                                               "preview")
                except TemplateProblem as e:
                    warnings.append(f"variant {variant.name}, {channel}: {e}")
                    continue
                parts = encoding = None
                if channel == "sms":
                    counted = segment(message.text)
                    parts, encoding = counted.segments, counted.encoding.value
                    if parts > max_segments:
                        warnings.append(f"variant {variant.name}, sms: {parts} segments, more "
                                        f"than [sms] max_segments ({max_segments}): it will "
                                        "be refused; shorten it")
                samples.append(ChannelSample(channel, variant.name, message.subject,
                                             message.text, message.html, parts, encoding))
        return samples, warnings

    # --- the test send -----------------------------------------------------------------------

    async def test(self, campaign_id: int, marketer: Manager,
                   to: dict[Channel, str] | None = None) -> list[str]:
        """Each variant to the marketer: its Telegram message in their private chat, the email
        and SMS shown there too, or sent for real to the addresses in `to`. Returns what went.
        A marketer without a Telegram id (the web console's staff) gets only what `to` has an
        address for; with nowhere to send anything, CrmError says so."""
        self.allowed(marketer)
        campaign = await self.get(campaign_id)
        spec = CampaignSpec.model_validate(campaign.spec)
        renderer = self.engine.renderer(spec, campaign.id, await self.engine.signer.key())
        person = Person(0, marketer.name, marketer.language)
        me = str(marketer.telegram_user_id) if marketer.telegram_user_id else None
        sent: list[str] = []
        stamp = self.clock().timestamp()
        async with self.bus.unit_of_work():
            for variant in spec.variants:
                for channel in (Channel(c) for c in spec.channels):
                    address = (to or {}).get(channel) or (me if channel is Channel.TELEGRAM
                                                          else None)
                    if address is None and me is None:
                        continue  # nowhere to show it
                    message = renderer.message(channel, variant.name, person, 0,
                                               address or me or "")
                    if address is None and me is not None:  # shown in Telegram as it reads
                        head = f"🧪 {campaign.name} · {variant.name} · {channel.value}"
                        subject = f"\n{message.subject}" if message.subject else ""
                        message = OutboundMessage(Channel.TELEGRAM, me,
                                                  f"{head}{subject}\n\n{message.text}")
                    elif channel is Channel.TELEGRAM and len(spec.variants) > 1:
                        message = OutboundMessage(
                            message.channel, message.address, f"🧪 {variant.name}\n\n"
                            f"{message.text}", html=f"🧪 {variant.name}\n\n{message.html}",
                            options=message.options, attachments=message.attachments)
                    await self.outbox.enqueue(
                        message, idempotency_key=f"campaign-test:{campaign.id}:{variant.name}"
                        f":{channel.value}:{stamp}", priority=Priority.LIVE)
                    sent.append(f"{variant.name}/{channel.value} → {message.channel.value} "
                                f"{message.address}")
            if not sent:
                raise CrmError("there is nowhere to send your test: you have no Telegram id "
                               "(crm managers add ID … links one) and no address on the "
                               f"campaign's channels ({', '.join(spec.channels)})")
            await AuditLog.create(actor=f"manager:{marketer.id}", action="campaign.tested",
                                  detail={"campaign_id": campaign.id})
        return sent

    # --- the schedule ---------------------------------------------------------------------------

    async def schedule(self, campaign_id: int, at: datetime | None = None, *, actor: str,
                       by: Manager | None = None) -> Campaign:
        """To go at `at` (a naive time is in the campaign's time zone), at the time it was
        written with, or now. A missed campaign starts this way, by hand."""
        if by is not None:
            self.allowed(by)
        campaign = await self.get(campaign_id)
        spec = CampaignSpec.model_validate(campaign.spec)
        if campaign.state is CampaignState.PAUSED and campaign.started_at is not None:
            raise CrmError(f"campaign #{campaign.id} has started: resume it "
                           f"(crm campaigns resume {campaign.id})")
        if campaign.state not in (CampaignState.DRAFT, CampaignState.SCHEDULED,
                                  CampaignState.MISSED, CampaignState.PAUSED):
            raise CrmError(f"campaign #{campaign.id} is {campaign.state.value}: only a draft, "
                           "scheduled, missed or paused campaign can be scheduled")
        now = self.clock()
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=ZoneInfo(spec.schedule.timezone))
        start = at or spec.schedule.start()
        if start is None or start < now or campaign.state is CampaignState.MISSED:
            start = now if at is None or at < now else at
        await Campaign.filter(id=campaign.id).update(state=CampaignState.SCHEDULED,
                                                     start_at=start, state_reason=None)
        await AuditLog.create(actor=actor[:200], action="campaign.scheduled",
                              detail={"campaign_id": campaign.id, "at": start.isoformat()})
        log.info("campaign.scheduled", campaign_id=campaign.id, at=start.isoformat(),
                 actor=actor)
        return await self.get(campaign.id)

    async def pause(self, campaign_id: int, *, actor: str, by: Manager | None = None) -> int:
        if by is not None:
            self.allowed(by)
        campaign = await self.get(campaign_id)
        taken = await self.engine.pause(campaign.id, Phrase("campaign_paused_by", who=actor),
                                        actor=actor, now=self.clock())
        if taken < 0:
            raise CrmError(f"campaign #{campaign.id} is {campaign.state.value}: only a "
                           "scheduled or sending campaign can be paused")
        await AuditLog.create(actor=actor[:200], action="campaign.paused",
                              detail={"campaign_id": campaign.id})
        return taken

    async def cancel(self, campaign_id: int, *, actor: str, by: Manager | None = None) -> int:
        if by is not None:
            self.allowed(by)
        campaign = await self.get(campaign_id)
        taken = await self.engine.pause(campaign.id, Phrase("campaign_cancelled_by", who=actor),
                                        actor=actor, now=self.clock(), cancel=True)
        if taken < 0:
            raise CrmError(f"campaign #{campaign.id} is {campaign.state.value}: it cannot be "
                           "cancelled")
        await AuditLog.create(actor=actor[:200], action="campaign.cancelled",
                              detail={"campaign_id": campaign.id})
        return taken

    async def resume(self, campaign_id: int, *, actor: str,
                     by: Manager | None = None) -> Campaign:
        """A paused campaign goes on (one not started yet is scheduled again); a missed one
        starts now."""
        if by is not None:
            self.allowed(by)
        campaign = await self.get(campaign_id)
        now = self.clock()
        if campaign.state is CampaignState.PAUSED and campaign.started_at is not None:
            await Campaign.filter(id=campaign.id, state=CampaignState.PAUSED).update(
                state=CampaignState.SENDING, state_reason=None)
        elif campaign.state in (CampaignState.PAUSED, CampaignState.MISSED):
            start = campaign.start_at if campaign.start_at and campaign.start_at > now else now
            await Campaign.filter(id=campaign.id).update(
                state=CampaignState.SCHEDULED, start_at=start, state_reason=None)
        else:
            raise CrmError(f"campaign #{campaign.id} is {campaign.state.value}: only a paused "
                           "or missed campaign can be resumed")
        await AuditLog.create(actor=actor[:200], action="campaign.resumed",
                              detail={"campaign_id": campaign.id})
        log.info("campaign.resumed", campaign_id=campaign.id, actor=actor)
        return await self.get(campaign.id)


def check_templates(spec: CampaignSpec, company: str) -> None:
    """Every template renders for a sample customer; InvalidField naming the one that does
    not, and why (an unknown variable, unsafe code, Telegram HTML it cannot show)."""
    ctx = context(SAMPLE, company, spec.name)
    for i, variant in enumerate(spec.variants):
        for channel in ("telegram", "email", "sms"):
            content = variant.content(channel)
            if content is None:
                continue
            for name, value in content.model_dump().items():
                if not isinstance(value, str) or name in ("image",):
                    continue
                html = (channel, name) in (("telegram", "text"), ("email", "html"))
                try:
                    render(value, ctx, html_source=html, telegram=channel == "telegram",
                           limit=500_000)
                except TemplateProblem as e:
                    raise InvalidField(f"variants[{i}].{channel}.{name}",
                                       f"{e} (variables: customer.name, customer.first_name, "
                                       "customer.language, customer.tags, "
                                       "customer.attributes, customer.lead_source, "
                                       "last_order.number, last_order.status, company, "
                                       "campaign)") from None


def parse_at(text: str) -> datetime:
    """"2026-04-01 10:00", "2026-04-01T10:00+02:00": a time to schedule at."""
    try:
        return datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise InvalidField("at", f"{text!r} is not a time: write 2026-04-01 10:00 (in the "
                                 "campaign's time zone) or 2026-04-01T10:00+02:00") from None

