"""Keywords and delivery reports in the receiver, on the database without a gateway."""

from __future__ import annotations

from channels.sms.receiver import SmsReceiver
from crm.models import Customer, Identity, Message, Outbox
from crm.services import Core
from crm.types import Channel, InboundMessage


def sms(external_id: str, text: str, sender: str = "+12025550777") -> InboundMessage:
    return InboundMessage(Channel.SMS, external_id, sender, text=text)


async def test_a_retried_keyword_acts_once(core: Core) -> None:
    receiver = SmsReceiver(core)
    stop = await receiver.receive(sms("k-1", "STOP"))
    await receiver.receive(sms("k-2", "START"))
    again = await receiver.receive(sms("k-1", "STOP"))  # the gateway retried the first one
    assert again.duplicate and again.message_id == stop.message_id
    assert not (await Customer.get(id=stop.customer_id)).marketing_opt_out
    assert await Outbox.filter(customer_id=stop.customer_id).count() == 2


async def test_stop_from_an_unreachable_number_still_opts_out(core: Core) -> None:
    receiver = SmsReceiver(core)
    first = await receiver.receive(sms("u-1", "hello"))
    await Identity.filter(id=(await Message.get(id=first.message_id)).identity_id).update(
        undeliverable_reason="Twilio error 21610")
    await receiver.receive(sms("u-2", "cancel"))
    assert (await Customer.get(id=first.customer_id)).marketing_opt_out
    assert await Outbox.filter(customer_id=first.customer_id).count() == 0
    # START clears the mark: the number takes our messages again.
    await receiver.receive(sms("u-3", "unstop"))
    identity = await Identity.get(channel=Channel.SMS, address="+12025550777")
    assert identity.undeliverable_reason is None
    assert await Outbox.filter(customer_id=first.customer_id).count() == 1


async def test_yes_is_an_answer_unless_opted_out(core: Core) -> None:
    receiver = SmsReceiver(core)
    yes = await receiver.receive(sms("y-1", "Yes"))
    assert yes.conversation_id is not None  # routed to a manager like any answer
    assert "command" not in (await Message.get(id=yes.message_id)).meta
    await receiver.receive(sms("y-2", "stop"))
    back = await receiver.receive(sms("y-3", "yes"))
    assert (await Message.get(id=back.message_id)).meta["command"] == "start"
    assert not (await Customer.get(id=yes.customer_id)).marketing_opt_out
