"""Ingest: dedupe, identity resolution, conversations, safe under concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from crm.errors import InvalidAddress
from crm.events import MessageReceived
from crm.models import Conversation, Customer, Identity, Message
from crm.services import Core
from crm.types import Channel, ConversationStatus, Direction, InboundMessage


def inbound(n: int = 1, sender: str = "ann@example.com", channel: Channel = Channel.EMAIL,
            **kw: object) -> InboundMessage:
    return InboundMessage(channel=channel, external_id=f"ext-{n}-{sender}", sender=sender,
                          text=f"hello {n}", **kw)  # type: ignore[arg-type]


async def test_same_message_twice_is_stored_once(core: Core) -> None:
    first = await core.timeline.ingest(inbound(1))
    again = await core.timeline.ingest(inbound(1))
    assert not first.duplicate and again.duplicate
    assert again.message_id == first.message_id
    assert await Message.all().count() == 1


async def test_concurrent_copies_store_one(core: Core) -> None:
    results = await asyncio.gather(*(core.timeline.ingest(inbound(7)) for _ in range(10)))
    assert await Message.all().count() == 1
    assert len({r.message_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1


async def test_concurrent_first_messages_make_one_customer(core: Core) -> None:
    await asyncio.gather(*(core.timeline.ingest(inbound(n, sender="Bob@Example.com"))
                           for n in range(10)))
    assert await Customer.all().count() == 1
    assert await Identity.all().count() == 1
    assert await Message.all().count() == 10
    assert await Conversation.all().count() == 1


async def test_addresses_are_normalised_to_one_customer(core: Core) -> None:
    a = await core.timeline.ingest(inbound(1, sender='"Ann" <Ann@Example.COM>'))
    b = await core.timeline.ingest(inbound(2, sender="ann@example.com"))
    c = await core.timeline.ingest(inbound(3, sender="ann+shop@example.com"))
    assert a.customer_id == b.customer_id != c.customer_id
    p1 = await core.timeline.ingest(inbound(4, sender="(202) 555-0143", channel=Channel.SMS))
    p2 = await core.timeline.ingest(inbound(5, sender="+1 202 555 0143", channel=Channel.SMS))
    assert p1.customer_id == p2.customer_id
    assert await Identity.filter(channel=Channel.SMS).values_list("address", flat=True) == [
        "+12025550143"]


async def test_invalid_sender_is_refused_and_nothing_stored(core: Core) -> None:
    with pytest.raises(InvalidAddress, match="not an email address"):
        await core.timeline.ingest(inbound(1, sender="call me"))
    with pytest.raises(InvalidAddress, match="no sender"):
        await core.timeline.ingest(inbound(2, sender="  ", channel=Channel.SMS))
    assert await Message.all().count() == 0


async def test_every_inbound_sms_is_kept_under_its_sender(core: Core) -> None:
    # A number libphonenumber calls invalid (a newer range), a short code, a sender id, garbage.
    for n, sender in enumerate(["+1 555 765 4321", "72345", " ACME-Bank ", "call me"]):
        await core.timeline.ingest(inbound(n, sender=sender, channel=Channel.SMS))
    again = await core.timeline.ingest(inbound(9, sender="ACME-Bank", channel=Channel.SMS))
    assert await Identity.filter(channel=Channel.SMS).order_by("id").values_list(
        "address", flat=True) == ["+15557654321", "72345", "ACME-Bank", "call me"]
    assert again.customer_id == (await Identity.get(address="ACME-Bank")).customer_id
    assert await Message.all().count() == 5


async def test_closed_conversation_reopens_and_events_fire_after_commit(core: Core) -> None:
    seen: list[MessageReceived] = []

    async def listener(event: MessageReceived) -> None:
        seen.append(event)

    core.bus.subscribe(MessageReceived, listener)
    first = await core.timeline.ingest(inbound(1))
    assert seen[-1].new_customer and seen[-1].new_conversation
    await core.conversations.set_status(first.customer_id, ConversationStatus.CLOSED, "test")
    second = await core.timeline.ingest(inbound(2))
    assert seen[-1].reopened and second.conversation_id == first.conversation_id
    conv = await Conversation.get(id=first.conversation_id)
    assert conv.status is ConversationStatus.OPEN


async def test_old_closed_conversation_starts_a_new_one(core: Core) -> None:
    first = await core.timeline.ingest(inbound(1))
    await core.conversations.set_status(first.customer_id, ConversationStatus.CLOSED, "test")
    await Conversation.filter(id=first.conversation_id).update(
        closed_at=core.clock() - timedelta(days=30))
    second = await core.timeline.ingest(inbound(2))
    assert second.conversation_id != first.conversation_id


async def test_automated_mail_is_an_event_and_opens_nothing(core: Core) -> None:
    result = await core.timeline.ingest(inbound(1, automated=True))
    message = await Message.get(id=result.message_id)
    assert message.direction is Direction.EVENT
    assert await Conversation.all().count() == 0


async def test_edit_updates_the_original(core: Core) -> None:
    tg = Channel.TELEGRAM
    first = await core.timeline.ingest(InboundMessage(tg, "42:1", "42", text="helo"))
    await core.timeline.ingest(InboundMessage(tg, "42:1:edit:1", "42", text="hello",
                                              edit_of="42:1"))
    original = await Message.get(id=first.message_id)
    assert original.text == "hello"
    assert original.meta["edits"][0]["text"] == "helo"


async def test_batch_commits_many_and_dedupes(core: Core) -> None:
    batch = [inbound(n, sender=f"c{n % 3}@example.com") for n in range(30)]
    results = await core.timeline.ingest_batch(batch)
    assert not any(r.duplicate for r in results)
    again = await core.timeline.ingest_batch(batch[:5])
    assert all(r.duplicate for r in again)
    assert await Message.all().count() == 30
    assert await Customer.all().count() == 3


async def test_nul_bytes_and_huge_subjects_are_stored_not_refused(core: Core) -> None:
    """A message the database would refuse as it is must not block its channel forever."""
    result = await core.timeline.ingest(InboundMessage(
        Channel.EMAIL, "<nul@x>", "ann@example.com", text="bad\x00byte",
        headers={"subject": "S" * 2000, "x": ["a\x00"]}))
    message = await Message.get(id=result.message_id)
    assert message.text == "badbyte"
    conv = await Conversation.get(id=result.conversation_id)
    assert conv.subject == "S" * 500
