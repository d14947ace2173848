"""What the SMS channel does with what arrives: ingest, keywords, and delivery reports.

Inbound SMS are stored through `Timeline.ingest` (dedupe, identity, timeline), which commits
before the webhook answers the gateway. A keyword (STOP, START, HELP) is stored with its command
so it is recorded, not routed; its effect (opt-out, opt-in) and its answer commit in the same
transaction as the message, once per inbound message (keyed by the message), so a gateway's
retry does not act twice.

A delivery report can overtake the send it reports on (a fake or fast SMSC acknowledges before
our outbox has recorded the send): the report then waits for that outbox row to be recorded, or
asks the gateway to try again later.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from enum import StrEnum

import structlog

from channels.sms.keywords import Keyword, KeywordMatch, match_keyword
from channels.sms.reports import DeliveryReport
from crm.errors import SendRejected
from crm.events import DeliveryChanged
from crm.i18n import t
from crm.models import Identity, Outbox
from crm.services import Core
from crm.timeline import IngestResult
from crm.types import Channel, ConsentKind, ConsentSource, InboundMessage, OutboxState

log = structlog.get_logger(__name__)

_ANSWERS = {Keyword.STOP: "sms_opted_out", Keyword.START: "sms_opted_in",
            Keyword.HELP: "sms_help"}


class ReportOutcome(StrEnum):
    APPLIED = "applied"
    UNKNOWN = "unknown"  # no such message: a report for something we never sent (or forgot)
    NOT_YET = "not_yet"  # the send is still being recorded: the gateway should try again


class SmsReceiver:
    def __init__(self, core: Core, report_wait: float = 10.0) -> None:
        self.core = core
        self.report_wait = report_wait
        self._recorded: dict[int, list[asyncio.Event]] = {}
        core.bus.subscribe(DeliveryChanged, self._on_delivery, phase="after_commit")

    # Inbound -------------------------------------------------------------------------------

    async def receive(self, msg: InboundMessage, *,
                      provider_confirmed: bool = False) -> IngestResult:
        """Store one inbound SMS; act on its keyword. `provider_confirmed`: the gateway has
        already answered the keyword itself (Twilio's Advanced Opt-Out), so we do not."""
        customer = await self.core.customers.by_address(Channel.SMS, msg.sender)
        opted_out = customer is not None and not await self.core.consent.allows(
            customer.id, ConsentKind.MARKETING, Channel.SMS)
        match = match_keyword(msg.text, opted_out=opted_out)
        if match is not None:
            msg = replace(msg, command=match.keyword.value)
        # The keyword's effect commits with the message: a STOP stored is a STOP applied, even
        # if we die right after (Twilio does not retry an inbound webhook).
        async with self.core.bus.unit_of_work():
            result = await self.core.timeline.ingest(msg)
            if match is not None:
                await self._act(result, match, msg.sender, provider_confirmed)
        log.info("sms.received", message_id=result.message_id, customer_id=result.customer_id,
                 duplicate=result.duplicate, keyword=match.keyword.value if match else None)
        return result

    async def _act(self, result: IngestResult, match: KeywordMatch, address: str,
                   provider_confirmed: bool) -> None:
        key = f"sms-keyword:{result.message_id}"
        if await Outbox.filter(idempotency_key=key).exists():
            return  # this message's keyword was handled already (a gateway's retry)
        core = self.core
        customer = await core.customers.get(result.customer_id)
        language = "ru" if match.language == "ru" else (
            customer.language or core.settings.bot.default_language)
        text = t(_ANSWERS[match.keyword], language, company=core.settings.bot.company_name)
        async with core.bus.unit_of_work():
            if match.keyword in (Keyword.STOP, Keyword.START):
                await core.consent.change(
                    customer.id, [ConsentKind.MARKETING, ConsentKind.NOTIFICATIONS],
                    match.keyword is Keyword.START, channel=Channel.SMS,
                    source=ConsentSource.GATEWAY if provider_confirmed else ConsentSource.KEYWORD,
                    actor="customer")
            if match.keyword is Keyword.START:
                # START proves the number takes our SMS again (e.g. after Twilio's 21610).
                await Identity.filter(channel=Channel.SMS, address=address).update(
                    undeliverable_reason=None, undeliverable_at=None)
            if provider_confirmed and match.keyword is not Keyword.HELP:
                return
            try:
                await core.conversations.send(customer.id, text, channel=Channel.SMS,
                                              author_kind="bot", idempotency_key=key)
            except SendRejected as e:
                log.warning("sms.keyword_answer_rejected", customer_id=customer.id,
                            keyword=match.keyword.value, reason=str(e))

    # Delivery reports ----------------------------------------------------------------------

    async def _on_delivery(self, event: DeliveryChanged) -> None:
        if event.outbox_id is not None:
            for waiter in self._recorded.get(event.outbox_id, ()):
                waiter.set()

    async def report(self, report: DeliveryReport, outbox_id: int | None) -> ReportOutcome:
        """Apply a delivery report to the message it is about."""
        if outbox_id is None:
            return await self._apply(report)
        waiter = asyncio.Event()
        self._recorded.setdefault(outbox_id, []).append(waiter)
        try:
            for _ in range(2):
                if await self._apply(report) is ReportOutcome.APPLIED:
                    return ReportOutcome.APPLIED
                row = await Outbox.filter(id=outbox_id).first()
                if row is not None and row.state is OutboxState.SENT:
                    continue  # recorded between our two reads: look once more
                if row is None or row.state is not OutboxState.SENDING:
                    return ReportOutcome.UNKNOWN
                log.debug("sms.report_waits_for_send", outbox_id=outbox_id)
                try:
                    await asyncio.wait_for(waiter.wait(), self.report_wait)
                except TimeoutError:
                    return ReportOutcome.NOT_YET
            return ReportOutcome.UNKNOWN
        finally:
            waiters = self._recorded.get(outbox_id, [])
            waiters.remove(waiter)
            if not waiters:
                self._recorded.pop(outbox_id, None)

    async def _apply(self, report: DeliveryReport) -> ReportOutcome:
        applied = await self.core.outbox.record_delivery(
            Channel.SMS, report.external_id, report.status, report.error,
            permanent=report.permanent)
        return ReportOutcome.APPLIED if applied else ReportOutcome.UNKNOWN
