"""Orders in the managers' chat: `/orders` and `/order NUMBER` in a customer's topic, and the
line of the `/info` card. Managers read every order of the customer whose topic it is; text
from the shop (numbers, items, notes) is escaped for Telegram's HTML."""

from __future__ import annotations

from channels.telegram.text import escape
from crm.orders.views import OrderView
from crm.services import Core

LISTED = 10


def _line(core: Core, order: OrderView) -> str:
    total = f" · {order.amount} {order.currency or ''}".rstrip() if order.amount else ""
    day = f" · {order.placed_at:%Y-%m-%d}" if order.placed_at else ""
    return f"{order.number}{day} · {core.orders.statuses.label(order.status)}{total}"


async def summary(core: Core, customer_id: int) -> str:
    """For /info: the newest orders in one line (plain text), or —."""
    recent = await core.queries.orders.recent(customer_id, 4)
    if not recent:
        return "—"
    more = ", …" if len(recent) > 3 else ""
    return ", ".join(f"{o.number} {core.orders.statuses.label(o.status)}"
                     for o in recent[:3]) + more


async def listing(core: Core, customer_id: int) -> str:
    recent = await core.queries.orders.recent(customer_id, LISTED + 1)
    if not recent:
        return "📦 <i>No orders.</i>"
    last = f", the last {LISTED}" if len(recent) > LISTED else ""
    lines = [f"📦 <b>Orders</b> (newest first{last}):"]
    lines += [escape(_line(core, o)) for o in recent[:LISTED]]
    lines.append("<i>/order NUMBER for one with its history</i>")
    return "\n".join(lines)


async def details(core: Core, customer_id: int, number: str) -> str:
    order = await core.queries.orders.owned(customer_id, number)
    if order is None:
        return f"📦 <i>This customer has no order {escape(number)}.</i>"
    label = core.orders.statuses.label
    lines = [f"📦 <b>{escape(order.number)}</b> · {escape(label(order.status))}"]
    if order.external_number:
        lines.append(f"shop number: {escape(order.external_number)}")
    if order.amount:
        total = f"{order.amount} {order.currency or ''}".strip()
        lines.append(f"total: {escape(total)}")
    for item in order.items[:20]:
        name, quantity = str(item.get("name", "")), str(item.get("quantity", 1))
        lines.append(f"• {escape(name)} × {escape(quantity)}")
    for e in order.events:
        when = f"{e.happened_at:%Y-%m-%d %H:%M}" if e.happened_at else ""
        note = f" — {e.note}" if e.note else ""
        lines.append(escape(f"{when} {label(e.status)} ({e.actor}){note}"))
    lines.append(f"status page: {escape(await core.orders.link(order.id, order.customer_id))}")
    return "\n".join(lines)
