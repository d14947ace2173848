"""Keywords (through the dialogue) and delivery reports in the receiver, on the database
without a gateway."""

from __future__ import annotations

import asyncio

from channels.sms.receiver import ReportOutcome, SmsReceiver
from channels.sms.reports import DeliveryReport
from crm.models import Identity, Message, Outbox
from crm.services import Core
from crm.types import Channel, DeliveryResult, DeliveryStatus, InboundMessage
from tests.support.consent import takes_marketing


def sms(external_id: str, text: str, sender: str = "+12025550777") -> InboundMessage:
    return InboundMessage(Channel.SMS, external_id, sender, text=text)


async def test_a_retried_keyword_acts_once(talking_core: Core) -> None:
    receiver = SmsReceiver(talking_core)
    stop = await receiver.receive(sms("k-1", "STOP"))
    await receiver.receive(sms("k-2", "START"))
    again = await receiver.receive(sms("k-1", "STOP"))  # the gateway retried the first one
    assert again.duplicate and again.message_id == stop.message_id
    assert await takes_marketing(stop.customer_id, Channel.SMS)
    assert await Outbox.filter(customer_id=stop.customer_id).count() == 2


async def test_stop_from_an_unreachable_number_still_opts_out(talking_core: Core) -> None:
    receiver = SmsReceiver(talking_core)
    first = await receiver.receive(sms("u-1", "hello"))
    await Identity.filter(id=(await Message.get(id=first.message_id)).identity_id).update(
        undeliverable_reason="Twilio error 21610", undeliverable_kind="opted_out")
    await receiver.receive(sms("u-2", "cancel"))
    assert not await takes_marketing(first.customer_id, Channel.SMS)
    assert await Outbox.filter(customer_id=first.customer_id).count() == 0
    # Writing again does not clear a carrier's opt-out (Twilio would refuse us again)…
    identity = await Identity.get(channel=Channel.SMS, address="+12025550777")
    assert identity.undeliverable_reason == "Twilio error 21610"
    # …START does: the number takes our messages again.
    await receiver.receive(sms("u-3", "unstop"))
    identity = await Identity.get(channel=Channel.SMS, address="+12025550777")
    assert identity.undeliverable_reason is None
    assert await Outbox.filter(customer_id=first.customer_id).count() == 1


async def test_yes_is_an_answer_unless_opted_out(talking_core: Core) -> None:
    receiver = SmsReceiver(talking_core)
    yes = await receiver.receive(sms("y-1", "Yes"))
    assert yes.conversation_id is not None  # routed to a manager like any answer
    assert "command" not in (await Message.get(id=yes.message_id)).meta
    await receiver.receive(sms("y-2", "stop"))
    back = await receiver.receive(sms("y-3", "yes"))
    assert (await Message.get(id=back.message_id)).meta["command"] == "start"
    assert await takes_marketing(yes.customer_id, Channel.SMS)


async def test_a_report_that_overtakes_its_send_waits_for_it(core: Core) -> None:
    receiver = SmsReceiver(core, report_wait=10)
    first = await receiver.receive(sms("r-1", "hello"))
    reply = await core.conversations.send(first.customer_id, "Hi there")
    [claimed] = await core.outbox.claim(Channel.SMS, 10, lease_seconds=30)
    # The SMSC's "delivered" arrives while our send is still being recorded.
    report = asyncio.create_task(receiver.report(
        DeliveryReport("kannel-1-abc", DeliveryStatus.DELIVERED), claimed.id))
    # Give the report a moment to find the row still being sent (the outcome is the same
    # either way; this only makes the waiting path the one taken).
    await asyncio.sleep(0.05)
    assert not report.done()
    await core.outbox.record(claimed, DeliveryResult.sent("kannel-1-abc", segments=1),
                             retry_in=None, give_up=False)
    assert await asyncio.wait_for(report, 5) is ReportOutcome.APPLIED
    stored = await Message.get(id=reply.id)
    assert stored.delivery_status is DeliveryStatus.DELIVERED


async def test_a_report_for_a_send_not_recorded_in_time_asks_for_a_retry(core: Core) -> None:
    receiver = SmsReceiver(core, report_wait=0.1)
    first = await receiver.receive(sms("r-2", "hello"))
    await core.conversations.send(first.customer_id, "Hi there")
    [claimed] = await core.outbox.claim(Channel.SMS, 10, lease_seconds=30)
    outcome = await receiver.report(
        DeliveryReport("kannel-1-def", DeliveryStatus.DELIVERED), claimed.id)
    assert outcome is ReportOutcome.NOT_YET
    unknown = await receiver.report(DeliveryReport("kannel-9-zzz", DeliveryStatus.DELIVERED),
                                    None)
    assert unknown is ReportOutcome.UNKNOWN
