"""Short reads: lists and cards answer as the worker's connection would, wherever they run.

On SQLite they run on a read-only connection in the loop's thread (crm/sqlite_reads.py); on
PostgreSQL through asyncpg. The expectations are the same for both.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from crm import sql
from crm.models import Conversation, Customer
from crm.queries import ConversationFilter, CustomerFilter
from crm.services import Core
from crm.types import Channel, ConversationStatus

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


class _Undo(Exception):
    pass


async def _conversations(n: int) -> list[int]:
    """n customers with a conversation each, stored at once; their conversations' ids."""
    conn = get_connection("default")
    first = (await Customer.create(name="first", last_seen_at=T0)).id
    ids = range(first + 1, first + n)
    await conn.execute_many(sql.dialect_sql(
        conn, "INSERT INTO customer (id, name, tags, attributes, created_at, last_seen_at) "
        "VALUES (?, ?, '[]', '{}', ?, ?)"), [[i, f"c{i}", T0, T0] for i in ids])
    customers = [first, *ids]
    await conn.execute_many(sql.dialect_sql(
        conn, "INSERT INTO conversation (customer_id, status, channel, opened_at, acknowledged) "
        "VALUES (?, 'open', 'sms', ?, FALSE)"), [[c, T0] for c in customers])
    return [c.id for c in await Conversation.all().order_by("id")]


async def test_a_read_inside_a_unit_of_work_sees_its_own_writes(core: Core) -> None:
    await core.queries.conversations(ConversationFilter(), 10)  # a reader, if any, is open
    async with in_transaction():
        customer = await Customer.create(name="Ann", last_seen_at=T0)
        conv = await Conversation.create(customer_id=customer.id, channel=Channel.SMS)
        page = await core.queries.conversations(ConversationFilter(), 10)
        assert [c.id for c in page.items] == [conv.id]
        card = await core.queries.card(customer.id)
        assert card.customer.name == "Ann" and card.conversations.counts["open"] == 1
    assert (await core.queries.conversation(conv.id)).customer_name == "Ann"


async def test_a_commit_is_seen_by_the_next_read(core: Core) -> None:
    customer = await Customer.create(name="Ann", last_seen_at=T0)
    conv = await Conversation.create(customer_id=customer.id, channel=Channel.SMS)
    assert (await core.queries.card(customer.id)).conversations.counts["open"] == 1
    await Conversation.filter(id=conv.id).update(status=ConversationStatus.CLOSED)
    await Customer.filter(id=customer.id).update(name="Ann B.")
    card = await core.queries.card(customer.id)
    assert card.conversations.counts == {"open": 0, "waiting": 0, "closed": 1}
    assert card.customer.name == "Ann B."
    with contextlib.suppress(_Undo):  # a unit of work that rolls back leaves nothing behind
        async with in_transaction():
            await Customer.filter(id=customer.id).update(name="Eve")
            await Conversation.filter(id=conv.id).delete()
            raise _Undo
    assert (await core.queries.card(customer.id)).customer.name == "Ann B."
    assert (await core.queries.conversation(conv.id)).status is ConversationStatus.CLOSED


async def test_reads_that_scan_many_rows_answer_in_full(core: Core) -> None:
    ids = await _conversations(6_000)
    # Only the oldest conversation matches: the filter walks every row to find it.
    await Conversation.filter(id=ids[0]).update(status=ConversationStatus.WAITING)
    page = await core.queries.conversations(
        ConversationFilter(status=ConversationStatus.WAITING), 50)
    assert [c.id for c in page.items] == [ids[0]] and page.next_cursor is None
    found = await core.queries.customers(CustomerFilter(q="first"), 50)
    assert [c.name for c in found.items] == ["first"]
    # And a long page still comes whole, in order.
    page = await core.queries.conversations(ConversationFilter(), 1000)
    assert [c.id for c in page.items] == sorted(ids, reverse=True)[:1000]
