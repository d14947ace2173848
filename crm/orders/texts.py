"""What customers read about their orders, in their language and channel. Pure.

Plain text: each channel escapes it for itself (Telegram HTML, email), and the status page is a
Jinja2 template with autoescape. Internal notes of the team never appear here.
"""

from __future__ import annotations

from crm.i18n import t
from crm.orders.statuses import Statuses
from crm.orders.views import OrderView
from crm.types import Channel


def per_channel(key: str, channel: Channel, language: str, **values: object) -> str:
    """`key_sms`, `key_telegram`, `key_email`, or `key` for a channel without its own."""
    try:
        return t(f"{key}_{channel.value}", language, **values)
    except KeyError:
        return t(key, language, **values)


def day(order: OrderView) -> str:
    moment = order.placed_at or order.created_at
    return f"{moment:%Y-%m-%d}" if moment else ""


def line(order: OrderView, statuses: Statuses, language: str) -> str:
    """`A-1042 · 2026-03-01 · Shipped`"""
    parts = [order.number, day(order), statuses.label(order.status, language)]
    return " · ".join(p for p in parts if p)


def listing(orders: list[OrderView], statuses: Statuses, language: str) -> str:
    if not orders:
        return t("orders_none", language)
    return "\n".join([t("orders_list", language),
                      *(line(o, statuses, language) for o in orders)])


def details(order: OrderView, statuses: Statuses, language: str, link: str,
            history_limit: int | None = None) -> str:
    """The order, its history (oldest first; the last `history_limit` steps) and the link to
    its status page, which has all of it."""
    head = t("order_details", language, number=order.number,
             status=statuses.label(order.status, language))
    history = [f"{e.happened_at:%Y-%m-%d %H:%M} UTC · {statuses.label(e.status, language)}"
               for e in order.events if e.happened_at is not None]
    if history_limit is not None:
        history = history[-history_limit:]
    return "\n".join([head, *history, t("order_link", language, link=link)])


def notice(number: str, status: str, statuses: Statuses, channel: Channel, language: str,
           link: str, company: str) -> str:
    return per_channel("order_notice", channel, language, number=number, link=link,
                       status=statuses.label(status, language), company=company)


def notice_subject(number: str, status: str, statuses: Statuses, language: str) -> str:
    return t("order_notice_subject", language, number=number,
             status=statuses.label(status, language))
