"""Merge, export, forget, link identities, opt-out."""

from __future__ import annotations

import json

import pytest

from crm.customers import ERASED
from crm.errors import CrmError, InvalidAddress
from crm.models import AuditLog, Conversation, Customer, Identity, Message, Outbox
from crm.services import Core
from crm.types import Channel, ConversationStatus, InboundMessage, OutboxState


async def say(core: Core, channel: Channel, sender: str, text: str, n: int = 0) -> int:
    result = await core.timeline.ingest(
        InboundMessage(channel, f"{channel}-{sender}-{n}", sender, text=text,
                       sender_name="Ann" if channel is Channel.TELEGRAM else None))
    return result.customer_id


async def test_merge_moves_everything_and_is_audited(core: Core) -> None:
    tg = await say(core, Channel.TELEGRAM, "500", "hi from telegram")
    sms = await say(core, Channel.SMS, "+12025550143", "hi from sms")
    await core.customers.update(sms, tags=["vip"])
    target = await core.customers.merge(sms, tg)
    assert target.id == tg
    assert await Identity.filter(customer_id=tg).count() == 2
    assert await Message.filter(customer_id=tg).count() == 2
    assert await Conversation.filter(customer_id=sms).count() == 0
    assert (await Customer.get(id=tg)).tags == ["vip"]
    assert (await Customer.get(id=sms)).merged_into_id == tg  # type: ignore[attr-defined]
    # The old id still leads to the survivor.
    assert (await core.customers.get(sms)).id == tg
    audit = await AuditLog.get(action="customer.merged")
    assert audit.customer_id == tg and audit.detail["source_id"] == sms
    # A new SMS from the same number lands on the merged customer.
    assert await say(core, Channel.SMS, "+1 (202) 555-0143", "again", n=2) == tg
    with pytest.raises(CrmError, match="already merged"):
        await core.customers.merge(sms, tg)


async def test_shared_phone_links_telegram_to_the_sms_customer(core: Core) -> None:
    sms = await say(core, Channel.SMS, "+12025550143", "first by sms")
    tg = await say(core, Channel.TELEGRAM, "777", "then telegram")
    merged = await core.customers.link_identity(tg, Channel.SMS, "(202) 555-0143")
    assert merged.id == min(sms, tg)
    assert await Customer.filter(merged_into_id=None).count() == 1
    assert {i.channel for i in await Identity.filter(customer_id=merged.id)} == {
        Channel.SMS, Channel.TELEGRAM}


async def test_a_shared_number_must_be_a_phone_number(core: Core) -> None:
    tg = await say(core, Channel.TELEGRAM, "778", "hello")
    bank = await say(core, Channel.SMS, "ACME-Bank", "Payment received")
    for raw in ("ACME-Bank", "72345"):  # a sender id or short code is learnt, never linked
        with pytest.raises(InvalidAddress, match="not a phone number"):
            await core.customers.link_identity(tg, Channel.SMS, raw)
    assert (await core.customers.by_address(Channel.SMS, " ACME-Bank")).id == bank
    # A number newer than libphonenumber's tables is the customer's real number all the same.
    new_range = await say(core, Channel.SMS, "+15557654321", "by sms")
    merged = await core.customers.link_identity(tg, Channel.SMS, "+1 (555) 765-4321")
    assert merged.id == min(tg, new_range)


async def test_export_holds_everything_as_json(core: Core) -> None:
    cid = await say(core, Channel.EMAIL, "ann@example.com", "where is my order?")
    await core.conversations.note(cid, "called her", None)
    data = await core.customers.export(cid)
    text = json.dumps(data, default=str)
    assert "where is my order?" in text and "called her" in text
    assert data["identities"][0]["address"] == "ann@example.com"
    assert {m["direction"] for m in data["messages"]} == {"in", "note"}


async def test_forget_erases_personal_data_and_keeps_counts(core: Core) -> None:
    cid = await say(core, Channel.TELEGRAM, "900", "my address is 1 Main St")
    await core.conversations.send(cid, "noted")
    counts = await core.customers.forget(cid)
    assert counts["messages"] == 2
    customer = await Customer.get(id=cid)
    assert customer.name is None and customer.erased_at is not None
    assert await Identity.filter(customer_id=cid).count() == 0
    texts = await Message.filter(customer_id=cid).values_list("text", flat=True)
    assert texts == [ERASED, ERASED]  # the rows (and so the counts) remain
    assert await Outbox.filter(state=OutboxState.QUEUED).count() == 0
    audit = await AuditLog.get(action="customer.forgotten")
    assert "1 Main St" not in json.dumps(audit.detail)
    # The same person writing again is a new, unknown customer.
    assert await say(core, Channel.TELEGRAM, "900", "hello again", n=2) != cid


async def test_merge_keeps_one_live_conversation_and_forget_covers_merged_in(
        core: Core) -> None:
    tg = await say(core, Channel.TELEGRAM, "501", "from telegram")
    sms = await say(core, Channel.SMS, "+12025550177", "from sms")
    await core.customers.update(sms, name="Ann Smith", tags=["vip"])
    target = await core.customers.merge(sms, tg)
    live = await Conversation.filter(customer_id=target.id, status__in=["open", "waiting"])
    assert len(live) == 1
    exported = await core.customers.export(target.id)
    assert exported["merged_from"][0]["name"] == "Ann Smith"
    await core.customers.forget(target.id)
    source = await Customer.get(id=sms)
    assert source.name is None and source.tags == [] and source.erased_at is not None


async def test_a_merge_closes_the_older_conversation_out_loud(core: Core) -> None:
    from crm.events import ConversationChanged

    seen: list[ConversationChanged] = []

    async def on(event: ConversationChanged) -> None:
        seen.append(event)

    core.bus.subscribe(ConversationChanged, on)
    tg = await say(core, Channel.TELEGRAM, "511", "from telegram")
    sms = await say(core, Channel.SMS, "+12025550178", "from sms")
    await core.customers.merge(sms, tg)
    [closed] = seen
    assert closed.status is ConversationStatus.CLOSED and closed.change == "merged"
    assert closed.customer_id == tg
