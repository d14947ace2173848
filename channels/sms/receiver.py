"""What the SMS channel does with what arrives: inbound SMS into the inbox, delivery reports.

Inbound SMS go to the core's inbox (the customer dialogue, which knows the keywords: STOP,
START, HELP, …) and are committed, keyword effects and answers included, before the webhook
answers the gateway. A gateway's retry is stored once and acted on once.

A delivery report can overtake the send it reports on (a fake or fast SMSC acknowledges before
our outbox has recorded the send): the report then waits for that outbox row to be recorded, or
asks the gateway to try again later.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from enum import StrEnum

import structlog

from channels.sms.reports import DeliveryReport
from crm.events import DeliveryChanged
from crm.models import Outbox
from crm.services import Core
from crm.timeline import IngestResult
from crm.types import Channel, InboundMessage, OutboxState

log = structlog.get_logger(__name__)

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
                      gateway_keyword: str | None = None) -> IngestResult:
        """Store one inbound SMS through the inbox. `gateway_keyword`: the gateway acted on a
        keyword itself (Twilio's Advanced Opt-Out says STOP, START or HELP, whatever words its
        own list has): the dialogue applies that and does not answer again."""
        if gateway_keyword:
            msg = replace(msg, headers={**msg.headers, "gateway_answered": True,
                                        "gateway_keyword": gateway_keyword.strip().upper()})
        result = await self.core.inbox.receive(msg)
        log.info("sms.received", message_id=result.message_id, customer_id=result.customer_id,
                 duplicate=result.duplicate)
        return result

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
