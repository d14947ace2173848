"""The inbox: conversations by list (mine, unassigned, all open, waiting on us, closed), with
the count of each, filtered by channel and by the customer's tag. The read side of the web
console, beside crm/queries.py (the API's lists) and crm/search.py.

Plain SQL on both databases: every list but "waiting on us" walks the primary key backwards
(newest first) and the (status, assignee_id) index; "waiting on us" is the open conversations
whose customer's last word is unanswered, the longest wait first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise.connection import get_connection

from crm import sql
from crm.types import Channel, ConversationStatus


class InboxList(StrEnum):
    MINE = "mine"
    UNASSIGNED = "unassigned"
    OPEN = "open"
    WAITING = "waiting"
    CLOSED = "closed"


# `{status}` is the status column: as it is for counts (they walk the (status, assignee_id)
# index); for the newest-first lists on SQLite as `+v.status`, which keeps SQLite from sorting
# every open conversation by id when walking the primary key backwards stops after a page.
_NOT_CLOSED = "{status} IN ('open', 'waiting')"
_WAITING_ON_US = ("v.status = 'open' AND v.last_inbound_at IS NOT NULL AND "
                  "(v.last_outbound_at IS NULL OR v.last_outbound_at < v.last_inbound_at)")
_WHERE: dict[InboxList, str] = {
    InboxList.MINE: f"{_NOT_CLOSED} AND v.assignee_id = ?",
    InboxList.UNASSIGNED: f"{_NOT_CLOSED} AND v.assignee_id IS NULL",
    InboxList.OPEN: _NOT_CLOSED,
    # The (status, last_inbound_at) index: open ones, the longest wait first.
    InboxList.WAITING: _WAITING_ON_US,
    InboxList.CLOSED: "{status} = 'closed'",
}
_ORDER: dict[InboxList, str] = {
    InboxList.WAITING: "v.last_inbound_at ASC, v.id ASC",
}
SNIPPET = 140


@dataclass(frozen=True, slots=True)
class InboxFilter:
    channel: Channel | None = None
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class InboxRow:
    conversation_id: int
    customer_id: int
    customer_name: str | None
    status: ConversationStatus
    channel: Channel
    assignee_id: int | None
    assignee_name: str | None
    last_inbound_at: datetime | None
    last_outbound_at: datetime | None
    opened_at: datetime | None
    closed_at: datetime | None
    last_text: str
    last_direction: str | None

    @property
    def waiting_since(self) -> datetime | None:
        """When the customer's unanswered word came (None: nothing unanswered)."""
        if self.status is not ConversationStatus.OPEN or self.last_inbound_at is None:
            return None
        if self.last_outbound_at is not None and self.last_outbound_at >= self.last_inbound_at:
            return None
        return self.last_inbound_at


@dataclass(frozen=True, slots=True)
class InboxPage:
    rows: list[InboxRow]
    counts: dict[InboxList, int]
    more: bool


def _filters(f: InboxFilter, postgres: bool) -> tuple[str, list[Any]]:
    where, params = "", []
    if f.channel is not None:
        where += " AND v.channel = ?"
        params.append(f.channel.value)
    if f.tag:
        if postgres:
            where += " AND c.tags::jsonb @> ?::jsonb"
            params.append(json.dumps([f.tag]))
        else:
            where += " AND EXISTS (SELECT 1 FROM json_each(c.tags) t WHERE t.value = ?)"
            params.append(f.tag)
    return where, params


class Inbox:
    async def page(self, which: InboxList, manager_id: int, f: InboxFilter, limit: int,
                   offset: int = 0) -> InboxPage:
        conn = get_connection("default")
        postgres = sql.is_postgres(conn)
        extra, extra_params = _filters(f, postgres)
        where = _WHERE[which].format(status="v.status" if postgres else "+v.status") + extra
        params: list[Any] = ([manager_id] if which is InboxList.MINE else []) + extra_params
        order = _ORDER.get(which, "v.id DESC")
        rows = await sql.fetch(
            conn,
            "SELECT v.id, v.customer_id, c.name AS customer_name, v.status, v.channel, "
            "v.assignee_id, m.name AS assignee_name, v.last_inbound_at, v.last_outbound_at, "
            "v.opened_at, v.closed_at, lm.text AS last_text, lm.direction AS last_direction "
            "FROM conversation v JOIN customer c ON c.id = v.customer_id "
            "LEFT JOIN manager m ON m.id = v.assignee_id "
            "LEFT JOIN message lm ON lm.id = (SELECT x.id FROM message x WHERE "
            "x.conversation_id = v.id AND x.direction IN ('in', 'out') "
            "ORDER BY x.created_at DESC, x.id DESC LIMIT 1) "
            f"WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", [*params, limit + 1, offset])
        return InboxPage([_row(r) for r in rows[:limit]],
                         await self.counts(manager_id, f), len(rows) > limit)

    async def counts(self, manager_id: int, f: InboxFilter) -> dict[InboxList, int]:
        """How many conversations each list holds (with the same filters)."""
        conn = get_connection("default")
        postgres = sql.is_postgres(conn)
        extra, extra_params = _filters(f, postgres)
        join = " JOIN customer c ON c.id = v.customer_id" if f.tag else ""
        parts, params = [], []
        for which in InboxList:
            parts.append(f"(SELECT COUNT(*) FROM conversation v{join} WHERE "
                         f"{_WHERE[which].format(status='v.status')}{extra}) "
                         f"AS n_{which.value}")
            params += ([manager_id] if which is InboxList.MINE else []) + extra_params
        rows = await sql.fetch(conn, f"SELECT {', '.join(parts)}", params)
        return {which: int(rows[0][f"n_{which.value}"] or 0) for which in InboxList}


def _row(r: dict[str, Any]) -> InboxRow:
    at = sql.as_datetime
    text = " ".join(str(r["last_text"] or "").split())
    return InboxRow(
        conversation_id=int(r["id"]), customer_id=int(r["customer_id"]),
        customer_name=r["customer_name"], status=ConversationStatus(r["status"]),
        channel=Channel(r["channel"]), assignee_id=r["assignee_id"],
        assignee_name=r["assignee_name"], last_inbound_at=at(r["last_inbound_at"]),
        last_outbound_at=at(r["last_outbound_at"]), opened_at=at(r["opened_at"]),
        closed_at=at(r["closed_at"]),
        last_text=text[:SNIPPET] + ("…" if len(text) > SNIPPET else ""),
        last_direction=r["last_direction"])
