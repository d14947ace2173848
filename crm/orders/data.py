"""Orders follow their customer (crm/customers.py `CustomerData`): merged, exported, forgotten.

A merge moves the orders, so the survivor sees the orders of both. Forgetting keeps numbers,
statuses, amounts and dates (revenue and counts stay honest) and erases what could say more about
the person: the items and the team's notes.
"""

from __future__ import annotations

from typing import Any

from crm.models import Order, OrderEvent


class OrderData:
    model = Order
    # An order's history follows it: exported with it, its notes erased with its items; a merge
    # moves the order and the events with it.
    parts = (OrderEvent,)

    async def move(self, source_id: int, target_id: int) -> dict[str, int]:
        return {"orders": await Order.filter(customer_id=source_id).update(
            customer_id=target_id)}

    async def export(self, customer_id: int) -> dict[str, Any]:
        orders = await Order.filter(customer_id=customer_id).order_by("id")
        events = await OrderEvent.filter(order_id__in=[o.id for o in orders]).order_by("id")
        by_order: dict[int, list[dict[str, Any]]] = {}
        for e in events:
            by_order.setdefault(e.order_id, []).append({
                "status": e.status, "previous_status": e.previous_status, "source": e.source,
                "actor": e.actor, "note": e.note, "happened_at": e.happened_at.isoformat()})
        return {"orders": [{
            "number": o.number, "external_number": o.external_number, "status": o.status,
            "items": o.items, "amount_minor": o.amount_minor, "currency": o.currency,
            "placed_at": o.placed_at.isoformat() if o.placed_at else None,
            "created_at": o.created_at.isoformat(), "history": by_order.get(o.id, [])}
            for o in orders]}

    async def forget(self, customer_id: int) -> dict[str, int]:
        ids = await Order.filter(customer_id=customer_id).values_list("id", flat=True)
        count = await Order.filter(customer_id=customer_id).update(items=[])
        await OrderEvent.filter(order_id__in=list(ids)).update(note="")
        return {"orders": count}
