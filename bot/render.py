"""How timeline entries read in the managers' chat: HTML blocks, customer text escaped, in the
reader's language. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from channels.telegram.text import escape, escaped_pieces, split_text, utf16_len
from channels.telegram.topics import topic_link
from crm.consent import source_name
from crm.i18n import Phrase, team
from crm.types import Channel, DeliveryStatus, Direction

CAPTION_LIMIT = 1024  # Telegram's, for a file's caption
__all__ = ["topic_link"]

NAME_LIMIT = 128  # of a name in a caption or a header: a long one must not crowd out the rest
BLOCK_LIMIT = 3800  # leaves room for a header when blocks are packed into one message
CHANNEL_MARK = {Channel.TELEGRAM: "✈️ telegram", Channel.EMAIL: "✉️ email",
                Channel.SMS: "📱 sms", Channel.WEBCHAT: "💬 web chat", Channel.TEST: "🧪 test"}


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
    language: str = "en"  # of whoever reads it
    phrase: Phrase | None = None  # an event's text to show in `language` instead of `text`
    campaign: str | None = None  # the campaign this customer's message answers


def mark(channel: Channel) -> str:
    return CHANNEL_MARK.get(channel, channel.value)


def _head(entry: Entry) -> str:
    who = escape(entry.who)
    lang = entry.language
    if entry.edited:
        return f"✏️ <b>{who}</b> {team('head_edited', lang)} · {mark(entry.channel)}"
    if entry.direction is Direction.IN:
        return f"<b>{who}</b> · {mark(entry.channel)}"
    if entry.direction is Direction.OUT:
        return f"↪️ <b>{who}</b> → {mark(entry.channel)}"
    if entry.direction is Direction.NOTE:
        return f"📝 {team('head_note', lang, who=who)}"
    return "ℹ️ " + team("head_auto" if entry.automated else "head_event", lang) \
        + f" · {mark(entry.channel)}"


def caption(entry: Entry) -> str | None:
    """The entry as the caption of its one file, or None when it does not fit a caption."""
    top = "\n".join([_head(entry), *_extra(entry, with_files=False)])
    body = entry.text.strip()
    text = f"{top}\n{escape(body)}" if body else top
    return text if utf16_len(text) <= CAPTION_LIMIT else None


def file_caption(entry: Entry, name: str) -> str:
    """The caption of one of several files: whose it is, and its name. Names are cut as plain
    text, before escaping: a cut never splits a tag or an entity, which Telegram would refuse."""
    head = _head(replace(entry, who=_cut(entry.who, NAME_LIMIT)))
    return f"{head}\n📎 {escape(_cut(name, CAPTION_LIMIT - utf16_len(head) - 4, escape))}"


def _cut(text: str, limit: int, measure: Callable[[str], str] = str) -> str:
    """`text` within `limit` UTF-16 units (as `measure` makes it), "…" marking a cut."""
    if utf16_len(measure(text)) <= limit:
        return text
    return split_text(text, limit - 1, lambda s: utf16_len(measure(s)))[0] + "…"


def _extra(entry: Entry, *, with_files: bool = True) -> list[str]:
    extra = []
    if entry.campaign:
        line = team("campaign_reply_line", entry.language, name=entry.campaign)
        extra.append(f"<i>{escape(line)}</i>")
    if entry.warning:
        extra.append(notice(entry.warning, "⚠️"))
    if entry.subject:
        extra.append(f"<i>{escape(entry.subject)}</i>")
    if entry.attachments and with_files:
        extra.append("📎 " + escape(", ".join(entry.attachments)))
    return extra


def blocks(entry: Entry, limit: int = BLOCK_LIMIT) -> list[str]:
    """One block, or several when the text is long; each within `limit` and balanced HTML."""
    top = "\n".join([_head(entry), *_extra(entry)])
    body = entry.text.strip()
    if entry.direction is Direction.EVENT and not entry.automated:
        if entry.phrase is not None:
            body = entry.phrase.render(entry.language).strip()
        return [f"ℹ️ <i>{escape(body)}</i>"] if body else []
    if not body:
        return [top]
    pieces = escaped_pieces(body, limit - len(top) - 1)
    return [f"{top}\n{pieces[0]}", *pieces[1:]]


def notice(text: str, icon: str = "ℹ️") -> str:
    return f"{icon} <i>{escape(text)}</i>"


def failure(reason: str | None, channel: Channel, language: str = "en") -> str:
    return (f"⚠️ <b>{team('not_delivered', language)}</b> {team('by', language)} "
            f"{mark(channel)}: {escape(reason or team('unknown_reason', language))}")


def private_header(customer_name: str, customer_id: int) -> str:
    """The first line of each message in a manager's private chat; replies find the customer
    by its `#c<id>`."""
    # One line whatever the name holds: a newline in it would push our reference off the first
    # line and let the name's own "#c9" pick the customer a reply goes to.
    name = _cut(" ".join(customer_name.split()), NAME_LIMIT)
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


def consent_line(kind: str, channel: str, granted: bool, source: str,
                 language: str = "en") -> str:
    """`Marketing: stopped on sms (keyword).` for the managers' topic (plain text)."""
    where = team("every_channel", language) if channel == "*" else channel
    return team("consent_resumed" if granted else "consent_stopped", language,
                kind=team(f"kind_{kind}", language), where=where,
                source=source_name(source, language))
