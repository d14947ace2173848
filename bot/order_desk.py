"""Orders in the managers' chat: `/orders` and `/order NUMBER` in a customer's topic, and the
line of the `/info` card, in the manager's language (status labels too, where `[orders]` gives
one in it). Managers read every order of the customer whose topic it is; text from the shop
(numbers, items, notes) is escaped for Telegram's HTML."""

from __future__ import annotations

from channels.telegram.text import escape
from crm.actors import actor_named
from crm.i18n import in_language, team
from crm.orders.views import OrderView
from crm.services import Core

LISTED = 10


def _line(core: Core, order: OrderView, lang: str) -> str:
    total = f" · {order.amount} {order.currency or ''}".rstrip() if order.amount else ""
    day = f" · {order.placed_at:%Y-%m-%d}" if order.placed_at else ""
    return f"{order.number}{day} · {core.orders.statuses.label(order.status, lang)}{total}"


async def summary(core: Core, customer_id: int, lang: str) -> str:
    """For /info: the newest orders in one line (plain text), or —."""
    recent = await core.queries.orders.recent(customer_id, 4)
    if not recent:
        return "—"
    more = ", …" if len(recent) > 3 else ""
    return ", ".join(f"{o.number} {core.orders.statuses.label(o.status, lang)}"
                     for o in recent[:3]) + more


async def listing(core: Core, customer_id: int, lang: str) -> str:
    recent = await core.queries.orders.recent(customer_id, LISTED + 1)
    if not recent:
        return f"📦 <i>{escape(team('orders_none', lang))}</i>"
    head = team("orders_head_last", lang, n=LISTED) if len(recent) > LISTED \
        else team("orders_head", lang)
    lines = [f"📦 {head}"]
    lines += [escape(_line(core, o, lang)) for o in recent[:LISTED]]
    lines.append(f"<i>{escape(team('orders_hint', lang))}</i>")
    return "\n".join(lines)


async def details(core: Core, customer_id: int, number: str, lang: str) -> str:
    order = await core.queries.orders.owned(customer_id, number)
    if order is None:
        return f"📦 <i>{escape(team('order_unknown', lang, number=number))}</i>"
    label = core.orders.statuses.label
    lines = [f"📦 <b>{escape(order.number)}</b> · {escape(label(order.status, lang))}"]
    if order.external_number:
        lines.append(escape(team("order_shop_number", lang, number=order.external_number)))
    if order.amount:
        total = f"{order.amount} {order.currency or ''}".strip()
        lines.append(escape(team("order_total", lang, total=total)))
    for item in order.items[:20]:
        name, quantity = str(item.get("name", "")), str(item.get("quantity", 1))
        lines.append(f"• {escape(name)} × {escape(quantity)}")
    for e in order.events:
        when = f"{e.happened_at:%Y-%m-%d %H:%M}" if e.happened_at else ""
        note = f" — {e.note}" if e.note else ""
        who = in_language(await actor_named(e.actor), lang)
        lines.append(escape(f"{when} {label(e.status, lang)} ({who}){note}"))
    link = await core.orders.link(order.id, order.customer_id)
    lines.append(escape(team("order_status_page", lang, link=link)))
    return "\n".join(lines)
