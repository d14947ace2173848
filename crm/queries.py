"""The read side, shared by every front-end: the CLI, the managers' /info, the HTTP API.

Lists are keyset-paginated (crm/pagination.py): customers by (last_seen_at desc, id desc) with
never-seen customers last, conversations by id desc, a conversation's messages by id asc. The
statements are plain SQL (crm/sql.py) because lists and cards are the API's hot path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection

from crm import cards, pagination, search, sql
from crm.consent import Consents
from crm.errors import NotFound
from crm.i18n import Phrase
from crm.inbox import Inbox
from crm.models import Manager
from crm.orders.queries import OrderQueries
from crm.types import Channel, ConversationStatus
from crm.views import (
    CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
    ConversationView,
    CustomerCard,
    CustomerView,
    IdentityView,
    ManagerView,
    MessageView,
    Page,
    conversation_from,
    customer_of,
    identity_of,
    message_from,
)

_CUSTOMER = ("id, name, language, timezone, tags, attributes, lead_source, created_at, "
             "last_seen_at, erased_at")
_IDENTITY = ("id, customer_id, channel, address, display_name, undeliverable_reason, "
             "created_at, last_seen_at")
_CONVERSATION = ", ".join("c.name AS customer_name" if column == "customer_name" else f"v.{column}"
                          for column in CONVERSATION_COLUMNS)
# A customer and their identities (i_*), one row per identity (or one with i_id NULL).
_CARD = (
    "SELECT c.id, c.name, c.language, c.timezone, c.tags, c.attributes, c.lead_source, "
    "c.created_at, c.last_seen_at, c.erased_at, c.merged_into_id, i.id AS i_id, "
    "i.channel AS i_channel, i.address AS i_address, i.display_name AS i_display_name, "
    "i.undeliverable_reason AS i_undeliverable_reason, i.created_at AS i_created_at, "
    "i.last_seen_at AS i_last_seen_at FROM customer c LEFT JOIN identity i "
    "ON i.customer_id = c.id WHERE c.id = ? ORDER BY i.id")
_MESSAGE = ", ".join(MESSAGE_COLUMNS)


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    tag: str | None = None
    channel: Channel | None = None
    q: str | None = None  # part of a name or of an address
    created_after: datetime | None = None
    created_before: datetime | None = None
    seen_after: datetime | None = None
    seen_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    status: ConversationStatus | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    waiting_on_us: bool = False  # open, and the customer's last word is unanswered
    channel: Channel | None = None
    customer_id: int | None = None


class Queries:
    def __init__(self, consent: Consents) -> None:
        self.consent = consent
        self.orders = OrderQueries()  # crm/orders/queries.py
        self.inbox = Inbox()  # crm/inbox.py: the web console's lists

    # Customers ---------------------------------------------------------------------------

    async def customers(self, f: CustomerFilter, limit: int,
                        cursor: str | None = None) -> Page[CustomerView]:
        conn = get_connection("default")
        if f.q and not sql.is_postgres(conn):
            await search.with_fold(conn)  # `q` folds case with it (_customer_where)
        where, params = _customer_where(conn, f)
        seen: str | None = None
        last_id: int | None = None
        if cursor:
            seen, last_id = pagination.decode("customers", cursor, str, int)
        rows: list[dict[str, Any]] = []
        if cursor is None or seen is not None:
            keyset, key_params = "", []
            if seen is not None:
                at = _utc(sql.as_datetime(seen))
                keyset = " AND (last_seen_at < ? OR (last_seen_at = ? AND id < ?))"
                key_params = [at, at, last_id]
            rows = await sql.read(
                conn, f"SELECT {_CUSTOMER} FROM customer c WHERE {where} "
                f"AND last_seen_at IS NOT NULL{keyset} ORDER BY last_seen_at DESC, id DESC "
                f"{sql.limit(limit + 1)}", [*params, *key_params])
        if len(rows) <= limit:  # then those never seen, newest first
            keyset, key_params = "", []
            if cursor is not None and seen is None:
                keyset, key_params = " AND id < ?", [last_id]
            rows += await sql.read(
                conn, f"SELECT {_CUSTOMER} FROM customer c WHERE {where} "
                f"AND last_seen_at IS NULL{keyset} ORDER BY id DESC "
                f"{sql.limit(limit + 1 - len(rows))}", [*params, *key_params])
        more = len(rows) > limit
        rows = rows[:limit]
        identities = await self._identities(conn, [int(r["id"]) for r in rows])
        items = [customer_of(r, identities.get(int(r["id"]), [])) for r in rows]
        next_cursor = None
        if more and items:
            last = items[-1]
            next_cursor = pagination.encode(
                "customers", last.last_seen_at.isoformat() if last.last_seen_at else None,
                last.id)
        return Page(items, next_cursor)

    async def resolve(self, customer_id: int) -> int:
        """The customer's id, following merges to the survivor; NotFound if there is none."""
        conn = get_connection("default")
        current: int | None = customer_id
        for _ in range(100):
            rows = await sql.read(conn, "SELECT merged_into_id FROM customer WHERE id = ?",
                                   [current])
            if not rows:
                break
            if rows[0]["merged_into_id"] is None:
                return int(current or 0)
            current = int(rows[0]["merged_into_id"])
        raise NotFound(Phrase("customer_missing", id=customer_id))

    async def customer(self, customer_id: int) -> CustomerView:
        """A customer with their identities, in one statement (a merged one: the survivor)."""
        conn = get_connection("default")
        rows = await sql.read(conn, _CARD, [customer_id])
        if rows and rows[0]["merged_into_id"] is not None:
            rows = await sql.read(conn, _CARD, [await self.resolve(customer_id)])
        if not rows:
            raise NotFound(Phrase("customer_missing", id=customer_id))
        identities = [identity_of({k[2:]: v for k, v in r.items() if k.startswith("i_")}
                                  | {"customer_id": r["id"]})
                      for r in rows if r["i_id"] is not None]
        return customer_of(rows[0], identities)

    async def card(self, customer_id: int) -> CustomerCard:
        """Identities, consent and a summary of conversations: one statement (crm/cards.py)."""
        conn = get_connection("default")
        statement = cards.statement(sql.is_postgres(conn))
        rows = await sql.read(conn, statement, [customer_id])
        if rows and rows[0]["merged_into_id"] is not None:
            rows = await sql.read(conn, statement, [await self.resolve(customer_id)])
        if not rows:
            raise NotFound(Phrase("customer_missing", id=customer_id))
        customer = cards.customer(rows[0])
        states = self.consent.states_of(cards.consent_rows(rows[0]),
                                        [i.channel.value for i in customer.identities])
        return CustomerCard(customer, states, cards.summary(rows[0]))

    async def _identities(self, conn: BaseDBAsyncClient,
                          customer_ids: Sequence[int]) -> dict[int, list[IdentityView]]:
        if not customer_ids:
            return {}
        out: dict[int, list[IdentityView]] = {}
        for row in await sql.read(
                conn, f"SELECT {_IDENTITY} FROM identity WHERE customer_id IN "
                f"({sql.placeholders(len(customer_ids))}) ORDER BY id", list(customer_ids)):
            out.setdefault(int(row["customer_id"]), []).append(identity_of(row))
        return out

    # Conversations and messages ----------------------------------------------------------

    async def conversations(self, f: ConversationFilter, limit: int,
                            cursor: str | None = None) -> Page[ConversationView]:
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if f.status is not None:
            where.append("v.status = ?")
            params.append(f.status.value)
        if f.unassigned:
            where.append("v.assignee_id IS NULL")
        elif f.assignee_id is not None:
            where.append("v.assignee_id = ?")
            params.append(f.assignee_id)
        if f.waiting_on_us:
            where.append("v.status = 'open' AND v.last_inbound_at IS NOT NULL AND "
                         "(v.last_outbound_at IS NULL OR v.last_outbound_at < v.last_inbound_at)")
        if f.channel is not None:
            where.append("v.channel = ?")
            params.append(f.channel.value)
        if f.customer_id is not None:
            where.append("v.customer_id = ?")
            params.append(await self.resolve(f.customer_id))
        if cursor:
            (last_id,) = pagination.decode("conversations", cursor, int)
            where.append("v.id < ?")
            params.append(last_id)
        rows = await sql.rows(
            get_connection("default"),
            f"SELECT {_CONVERSATION} FROM conversation v JOIN customer c ON c.id = v.customer_id "
            f"WHERE {' AND '.join(where)} ORDER BY v.id DESC {sql.limit(limit + 1)}", params)
        items = [conversation_from(r) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, pagination.encode("conversations", items[-1].id)
                    if more and items else None)

    async def conversation(self, conversation_id: int) -> ConversationView:
        rows = await sql.rows(
            get_connection("default"),
            f"SELECT {_CONVERSATION} FROM conversation v JOIN customer c ON c.id = v.customer_id "
            "WHERE v.id = ?", [conversation_id])
        if not rows:
            raise NotFound(f"conversation #{conversation_id} does not exist")
        return conversation_from(rows[0])

    async def messages(self, conversation_id: int, limit: int,
                       cursor: str | None = None) -> Page[MessageView]:
        """A conversation's messages, oldest first."""
        after = 0
        if cursor:
            (after,) = pagination.decode("messages", cursor, int)
        rows = await sql.rows(
            get_connection("default"),
            f"SELECT {_MESSAGE} FROM message WHERE conversation_id = ? AND id > ? ORDER BY id "
            f"{sql.limit(limit + 1)}", [conversation_id, after])
        items = [message_from(r) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, pagination.encode("messages", items[-1].id)
                    if more and items else None)

    async def message(self, message_id: int) -> MessageView:
        rows = await sql.rows(get_connection("default"),
                              f"SELECT {_MESSAGE} FROM message WHERE id = ?", [message_id])
        if not rows:
            raise NotFound(f"message #{message_id} does not exist")
        return message_from(rows[0])

    async def timeline(self, customer_id: int, limit: int | None = None) -> list[MessageView]:
        """A customer's timeline, oldest first; with `limit`, only the last entries."""
        cid = await self.resolve(customer_id)
        tail = f" {sql.limit(limit)}" if limit else ""
        rows = await sql.rows(
            get_connection("default"),
            f"SELECT {_MESSAGE} FROM message WHERE customer_id = ? "
            f"ORDER BY created_at DESC, id DESC{tail}", [cid])
        return [message_from(r) for r in reversed(rows)]

    async def search(self, text: str, limit: int = 10,
                     topics_in: int | None = None) -> search.SearchResult:
        """Customers by name or address, messages by text (crm/search.py); `topics_in`: the
        managers' group, to give each hit its topic."""
        return await search.find(get_connection("default"), text, limit, topics_in)

    # The team ----------------------------------------------------------------------------

    async def managers(self, include_removed: bool = False) -> list[ManagerView]:
        qs = Manager.all() if include_removed else Manager.filter(active=True)
        return [ManagerView(m.id, m.name, m.username, m.role.value, m.availability.value,
                            m.capacity, m.active, m.email, m.telegram_user_id,
                            m.password_hash is not None) for m in await qs.order_by("id")]


def _customer_where(conn: BaseDBAsyncClient, f: CustomerFilter) -> tuple[str, list[Any]]:
    where: list[str] = ["c.merged_into_id IS NULL"]
    params: list[Any] = []
    if f.tag:
        if sql.is_postgres(conn):
            where.append("c.tags::jsonb @> ?::jsonb")
            params.append(json.dumps([f.tag]))
        else:
            where.append("EXISTS (SELECT 1 FROM json_each(c.tags) t WHERE t.value = ?)")
            params.append(f.tag)
    if f.channel is not None:
        where.append("EXISTS (SELECT 1 FROM identity i WHERE i.customer_id = c.id "
                     "AND i.channel = ?)")
        params.append(f.channel.value)
    if f.q:
        # SQLite's LOWER() folds A-Z only: crm_fold is casefold, for every script.
        fold, pattern = search.folded(conn, f.q)
        where.append(f"({fold}(c.name) LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM identity i "
                     f"WHERE i.customer_id = c.id AND {fold}(i.address) LIKE ? ESCAPE '\\'))")
        params += [pattern, pattern]
    for column, op, value in (("created_at", ">=", f.created_after),
                              ("created_at", "<", f.created_before),
                              ("last_seen_at", ">=", f.seen_after),
                              ("last_seen_at", "<", f.seen_before)):
        if value is not None:
            # In UTC, as stored: SQLite compares the stored text, so 10:00+05:00 must go in as
            # 05:00+00:00 or it lands on the wrong side of the rows it means.
            where.append(f"c.{column} {op} ?")
            params.append(_utc(value))
    return " AND ".join(where), params


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
