"""The read side of orders, reached as `core.queries.orders` like every other read.

`owned` is the customers' lookup ("ORDER 1042" on any channel). It reads only the asking
customer's rows: the number is compared as an expression (`number_key || ''`), which no index
serves, so the database walks that customer's orders by the (customer_id, …) index and never
touches another customer's row. Someone else's number and a number that does not exist take the
same path, the same single statement, and give the same None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.connection import get_connection

from crm import pagination, search, sql
from crm.errors import NotFound
from crm.orders.numbers import number_key
from crm.orders.views import (
    EVENT_COLUMNS,
    ORDER_COLUMNS,
    OrderEventView,
    OrderView,
    event_of,
    order_of,
)
from crm.views import Page


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Orders to list: `q` is part of the number, the shop's number, the customer's name or an
    address of theirs (case ignored); `status` one status code."""

    q: str | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class OrderLine:
    """An order in a list, with its customer's name."""

    order: OrderView
    customer_name: str | None


_OWNED = (f"SELECT {ORDER_COLUMNS} FROM customer_order o "
          "WHERE o.customer_id = ? AND o.number_key || '' = ?")


class OrderQueries:
    async def by_number(self, number: str) -> OrderView:
        rows = await sql.fetch(get_connection("default"),
                               f"SELECT {ORDER_COLUMNS} FROM customer_order o "
                               "WHERE o.number_key = ?", [number_key(number)])
        if not rows:
            raise NotFound(f"order {number} does not exist")
        return await self._with_events(rows[0])

    async def by_id(self, order_id: int) -> OrderView | None:
        rows = await sql.fetch(get_connection("default"),
                               f"SELECT {ORDER_COLUMNS} FROM customer_order o WHERE o.id = ?",
                               [order_id])
        return await self._with_events(rows[0]) if rows else None

    async def owned(self, customer_id: int, number: str) -> OrderView | None:
        """The customer's own order of that number, with its history; None otherwise."""
        rows = await sql.fetch(get_connection("default"), _OWNED,
                               [customer_id, number_key(number)])
        return await self._with_events(rows[0]) if rows else None

    async def recent(self, customer_id: int, limit: int) -> list[OrderView]:
        rows = await sql.fetch(get_connection("default"),
                               f"SELECT {ORDER_COLUMNS} FROM customer_order o "
                               "WHERE o.customer_id = ? ORDER BY o.id DESC LIMIT ?",
                               [customer_id, limit])
        return [order_of(r) for r in rows]

    async def of_customer(self, customer_id: int, limit: int,
                          cursor: str | None = None) -> Page[OrderView]:
        """A customer's orders, newest first, with their histories."""
        params: list[Any] = [customer_id]
        keyset = ""
        if cursor:
            (last_id,) = pagination.decode("orders", cursor, int)
            keyset, params = " AND o.id < ?", [customer_id, last_id]
        rows = await sql.fetch(get_connection("default"),
                               f"SELECT {ORDER_COLUMNS} FROM customer_order o WHERE "
                               f"o.customer_id = ?{keyset} ORDER BY o.id DESC LIMIT ?",
                               [*params, limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        events = await self.events([int(r["id"]) for r in rows])
        items = [order_of(r, events.get(int(r["id"]), [])) for r in rows]
        return Page(items, pagination.encode("orders", items[-1].id) if more and items else None)

    async def search(self, f: OrderFilter, limit: int,
                     cursor: str | None = None) -> Page[OrderLine]:
        """Every customer's orders, newest first (without their histories)."""
        conn = get_connection("default")
        where: list[str] = []
        params: list[Any] = []
        if f.status:
            where.append("o.status = ?")
            params.append(f.status)
        if f.q:
            if not sql.is_postgres(conn):
                await search.with_fold(conn)  # SQLite: case folded in every script
            fold, pattern = search.folded(conn, f.q)
            where.append(
                f"({fold}(o.number) LIKE ? ESCAPE '\\' "
                f"OR {fold}(COALESCE(o.external_number, '')) LIKE ? ESCAPE '\\' "
                f"OR {fold}(COALESCE(c.name, '')) LIKE ? ESCAPE '\\' "
                f"OR EXISTS (SELECT 1 FROM identity i WHERE i.customer_id = o.customer_id "
                f"AND {fold}(i.address) LIKE ? ESCAPE '\\'))")
            params += [pattern] * 4
        if cursor:
            (last_id,) = pagination.decode("orders-all", cursor, int)
            where.append("o.id < ?")
            params.append(last_id)
        rows = await sql.fetch(
            conn, f"SELECT {ORDER_COLUMNS}, c.name AS customer_name FROM customer_order o "
                  "JOIN customer c ON c.id = o.customer_id"
                  + (f" WHERE {' AND '.join(where)}" if where else "")
                  + " ORDER BY o.id DESC LIMIT ?", [*params, limit + 1])
        more = len(rows) > limit
        items = [OrderLine(order_of(r), r["customer_name"]) for r in rows[:limit]]
        return Page(items, pagination.encode("orders-all", items[-1].order.id)
                    if more and items else None)

    async def events(self, order_ids: Sequence[int]) -> dict[int, list[OrderEventView]]:
        if not order_ids:
            return {}
        out: dict[int, list[OrderEventView]] = {}
        for row in await sql.fetch(
                get_connection("default"),
                f"SELECT {EVENT_COLUMNS} FROM order_event WHERE order_id IN "
                f"({sql.placeholders(len(order_ids))}) ORDER BY id", list(order_ids)):
            out.setdefault(int(row["order_id"]), []).append(event_of(row))
        return out

    async def _with_events(self, row: dict[str, Any]) -> OrderView:
        events = await self.events([int(row["id"])])
        return order_of(row, events.get(int(row["id"]), []))
