"""Which orders count in the reports, and in what currency revenue is summed.

An order counts unless its status is one of `[reports] excluded_statuses` (cancelled, by
default); its time is when it was placed (else when we learnt of it). Revenue adds amounts in
one currency, `[reports] currency`, else the one most of the latest 1,000 orders are in; an
order without a currency is taken to be in it. Orders in other currencies still count as
orders, never as revenue (the report says how many were left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sql

ORDER_TIME = "COALESCE(o.placed_at, o.created_at)"


@dataclass(frozen=True, slots=True)
class OrderRules:
    excluded: tuple[str, ...]
    currency: str  # '' when no order has an amount

    def counted(self) -> tuple[str, list[object]]:
        """The condition on `o` (customer_order) for an order that counts."""
        if not self.excluded:
            return "1 = 1", []
        return f"o.status NOT IN ({sql.placeholders(len(self.excluded))})", list(self.excluded)

    def other(self) -> tuple[str, list[object]]:
        """1 for an order of `o` whose amount is in another currency, else 0."""
        return ("CASE WHEN o.amount_minor IS NOT NULL AND o.currency IS NOT NULL AND "
                "o.currency <> ? THEN 1 ELSE 0 END", [self.currency])

    def money(self) -> tuple[str, list[object]]:
        """The amount of `o` that is revenue (0 for another currency)."""
        return ("CASE WHEN COALESCE(o.currency, ?) = ? THEN COALESCE(o.amount_minor, 0) "
                "ELSE 0 END", [self.currency, self.currency])


async def rules(conn: BaseDBAsyncClient, excluded: Sequence[str], currency: str) -> OrderRules:
    if currency:
        return OrderRules(tuple(excluded), currency.upper())
    # The latest orders tell the shop's currency without reading them all.
    rows = await sql.fetch(conn, "SELECT currency, COUNT(*) AS n FROM (SELECT currency FROM "
                           "customer_order WHERE currency IS NOT NULL AND amount_minor IS NOT "
                           "NULL ORDER BY id DESC LIMIT 1000) latest "
                           "GROUP BY currency ORDER BY 2 DESC, 1 LIMIT 1")
    return OrderRules(tuple(excluded), str(rows[0]["currency"]) if rows else "")
