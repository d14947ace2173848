"""The read side: keyset pages that hold still while rows arrive, filters, cards."""

from __future__ import annotations

import pytest

from crm import pagination
from crm.models import Customer
from crm.queries import ConversationFilter, CustomerFilter
from crm.services import Core
from crm.types import Channel, InboundMessage


async def test_customer_pages_cover_everyone_once_with_ties_and_never_seen(core: Core) -> None:
    seen_at = core.clock()
    ids = [(await Customer.create(name=f"c{n}", last_seen_at=seen_at if n < 6 else None)).id
           for n in range(10)]
    merged = await Customer.create(name="gone", merged_into_id=ids[0], last_seen_at=seen_at)
    got: list[int] = []
    cursor = None
    while True:
        page = await core.queries.customers(CustomerFilter(), 3, cursor)
        got += [c.id for c in page.items]
        if len(got) == 3:  # rows arriving mid-way never shift the pages
            await Customer.create(name="late", last_seen_at=seen_at)
            await Customer.create(name="late, never seen")
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # Same last_seen_at: newest id first; then the never-seen, newest first. Each once: a row
    # that arrived behind the cursor is not shown, one ahead of it may be.
    assert [i for i in got if i in ids] == [*sorted(ids[:6], reverse=True),
                                            *sorted(ids[6:], reverse=True)]
    assert len(got) == len(set(got)) == len(ids) + 1
    assert merged.id not in got


async def test_cards_follow_merges_and_conversation_filters(core: Core) -> None:
    a = await core.timeline.ingest(InboundMessage(Channel.SMS, "s1", "+12025550143", text="x",
                                                  sender_name="Ann"))
    b = await core.timeline.ingest(InboundMessage(Channel.EMAIL, "<e1@x>", "ann@example.com",
                                                  text="y"))
    await core.customers.merge(b.customer_id, a.customer_id)
    card = await core.queries.card(b.customer_id)
    assert card.customer.id == a.customer_id
    assert sorted(i.channel.value for i in card.customer.identities) == ["email", "sms"]
    assert card.conversations.counts["open"] == 1 and card.conversations.latest is not None
    page = await core.queries.conversations(ConversationFilter(customer_id=b.customer_id), 10)
    assert [c.customer_id for c in page.items] == [a.customer_id] * len(page.items)
    assert [m.text for m in await core.queries.timeline(a.customer_id)] == ["x", "y"]
    assert [m.text for m in await core.queries.timeline(a.customer_id, 1)] == ["y"]


def test_cursors_are_opaque_and_checked() -> None:
    cursor = pagination.encode("customers", "2026-01-01T00:00:00+00:00", 5)
    assert pagination.decode("customers", cursor, str, int) == ("2026-01-01T00:00:00+00:00", 5)
    for bad in ("!!", cursor[:-3], pagination.encode("messages", 5),
                pagination.encode("customers", 5, "x")):
        with pytest.raises(pagination.InvalidCursor):
            pagination.decode("customers", bad, str, int)
