"""How timeline entries read in the managers' chat: HTML blocks, customer text escaped. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from channels.telegram.text import escape, escaped_pieces
from crm.types import Channel, DeliveryStatus, Direction

BLOCK_LIMIT = 3800  # leaves room for a header when blocks are packed into one message
CHANNEL_MARK = {Channel.TELEGRAM: "✈️ telegram", Channel.EMAIL: "✉️ email",
                Channel.SMS: "📱 sms", Channel.TEST: "🧪 test"}


@dataclass(frozen=True, slots=True)
class Entry:
    """A timeline entry as the managers' chat shows it."""

    direction: Direction
    channel: Channel
    text: str
    who: str  # the customer's name, the manager's name, "bot" or "system"
    attachments: Sequence[str] = field(default_factory=tuple)  # kinds: photo, document, …
    subject: str | None = None
    automated: bool = False
    edited: bool = False
    status: DeliveryStatus | None = None
    error: str | None = None
    warning: str | None = None  # e.g. crm.identity.reply_warning: shown under the head line


def mark(channel: Channel) -> str:
    return CHANNEL_MARK.get(channel, channel.value)


def _head(entry: Entry) -> str:
    who = escape(entry.who)
    if entry.edited:
        return f"✏️ <b>{who}</b> edited · {mark(entry.channel)}"
    if entry.direction is Direction.IN:
        return f"<b>{who}</b> · {mark(entry.channel)}"
    if entry.direction is Direction.OUT:
        return f"↪️ <b>{who}</b> → {mark(entry.channel)}"
    if entry.direction is Direction.NOTE:
        return f"📝 <b>note</b> by {who}"
    return "ℹ️ " + ("auto-reply / notice" if entry.automated else "event") \
        + f" · {mark(entry.channel)}"


def blocks(entry: Entry, limit: int = BLOCK_LIMIT) -> list[str]:
    """One block, or several when the text is long; each within `limit` and balanced HTML."""
    head = _head(entry)
    extra = []
    if entry.warning:
        extra.append(notice(entry.warning, "⚠️"))
    if entry.subject:
        extra.append(f"<i>{escape(entry.subject)}</i>")
    if entry.attachments:
        extra.append("📎 " + escape(", ".join(entry.attachments)))
    top = "\n".join([head, *extra])
    body = entry.text.strip()
    if entry.direction is Direction.EVENT and not entry.automated:
        return [f"ℹ️ <i>{escape(body)}</i>"] if body else []
    if not body:
        return [top]
    pieces = escaped_pieces(body, limit - len(top) - 1)
    return [f"{top}\n{pieces[0]}", *pieces[1:]]


def notice(text: str, icon: str = "ℹ️") -> str:
    return f"{icon} <i>{escape(text)}</i>"


def failure(reason: str | None, channel: Channel) -> str:
    return (f"⚠️ <b>Not delivered</b> by {mark(channel)}: "
            f"{escape(reason or 'unknown reason')}")


def private_header(customer_name: str, customer_id: int) -> str:
    """The first line of each message in a manager's private chat; replies find the customer
    by its `#c<id>`."""
    # One line whatever the name holds: a newline in it would push our reference off the first
    # line and let the name's own "#c9" pick the customer a reply goes to.
    name = " ".join(customer_name.split())
    return f"<b>{escape(name)}</b> #c{customer_id}"


def customer_ref(text: str | None) -> int | None:
    """The customer id in a private-chat header (`Name #c42` on the first line), or None.

    The last reference of the first line counts: a customer named "#c9" cannot redirect a
    manager's answer to customer 9."""
    if not text:
        return None
    found = _REF.findall(text.split("\n", 1)[0])
    return int(found[-1]) if found else None


_REF = re.compile(r"#c(\d+)")


def consent_line(kind: str, channel: str, granted: bool, source: str) -> str:
    """`Marketing: stopped on sms (keyword).` for the managers' topic (plain text)."""
    where = "every channel" if channel == "*" else channel
    state = "resumed" if granted else "stopped"
    return f"{kind.capitalize()}: {state} on {where} ({source})."
