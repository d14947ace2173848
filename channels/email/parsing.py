"""Raw mail bytes → what the CRM stores: a pure function, tested on recorded awkward mail.

Uses the standard library's modern email API (`email.policy.default`) for the MIME structure
and our own tolerant decoding (channels/email/headers.py) for headers and text, so that a wrong
charset, raw 8-bit headers or a missing Message-ID never loses a customer's mail.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from typing import Any

from channels.email.headers import (
    DEFAULT_FALLBACKS,
    addresses,
    charset_order,
    decode_bytes,
    decode_value,
    header,
    message_ids,
    normalize_id,
    parse_date,
    raw_header,
    synthesize_id,
)
from channels.email.loops import Bounce, automation_reason, parse_bounce
from channels.email.text import html_to_text, trim_reply
from crm.types import Attachment, Channel, InboundMessage

MAX_REFERENCES = 30
MAX_STORED_TEXT = 200_000  # characters of the full original kept in Message.meta
# Lines in front of the headers that are no header: an mbox "From " separator, its escaped
# ">From " form (mboxrd) after another mbox stage, and a byte-order mark from a saved file. The
# stdlib skips only a single unescaped "From " line; anything more ends its header block there.
_ENVELOPE = re.compile(rb"\A(?:\xef\xbb\xbf)?(?:>*From [^\r\n]*(?:\r\n|\r|\n))*"
                       rb"(?=[\x21-\x39\x3b-\x7e]+:)")


@dataclass(frozen=True, slots=True)
class MailPart:
    """An attachment as it came: bytes and what the mail says about them."""

    filename: str | None
    mime_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None

    @property
    def kind(self) -> str:
        if self.mime_type == "text/calendar":
            return "calendar"
        if self.mime_type.startswith("image/"):
            return "photo" if not self.inline else "inline_image"
        if self.mime_type in ("message/rfc822", "message/global"):
            return "email"
        return "document"


@dataclass(frozen=True, slots=True)
class ParsedMail:
    message_id: str
    synthesized_id: bool
    sender: str
    sender_name: str | None
    subject: str
    sent_at: datetime | None
    text: str  # what managers see first: quotes and signature trimmed
    full_text: str  # the whole text body
    html: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    parts: tuple[MailPart, ...]
    automated: str | None  # the reason a machine wrote it, or None
    bounce: Bounce | None
    headers: dict[str, Any] = field(default_factory=dict)


def parse_mail(raw: bytes, our_addresses: frozenset[str] = frozenset(),
               fallback_charsets: Sequence[str] = DEFAULT_FALLBACKS) -> ParsedMail:
    """Parse one mail. Never raises for malformed mail: the worst case is an empty text.

    Undeclared 8-bit bytes (raw 8-bit headers, a part without a usable charset) are read in the
    charsets the mail declares, then UTF-8, then `fallback_charsets` ([email] in the config).
    """
    msg = message_from_bytes(_ENVELOPE.sub(b"", raw, count=1), policy=policy.default)
    cs = charset_order((p.get_content_charset() for p in _leaves(msg)), fallback_charsets)
    ids = message_ids(raw_header(msg, "Message-ID", cs))
    message_id = ids[0] if ids else synthesize_id(raw)
    senders = addresses(msg, "From", cs) or addresses(msg, "Sender", cs) or \
        addresses(msg, "Return-Path", cs)
    sender_name, sender = senders[0] if senders else ("", "")
    subject = header(msg, "Subject", cs) or ""
    in_reply = message_ids(raw_header(msg, "In-Reply-To", cs))
    refs = message_ids(raw_header(msg, "References", cs))
    if in_reply and in_reply[0] not in refs:
        refs.append(in_reply[0])
    plain, html, body_parts = _body(msg, cs)
    parts = tuple(_attachments(msg, body_parts, cs))
    full = plain if plain is not None else html_to_text(html) if html is not None else ""
    if not full.strip():
        full = _fallback_text(parts, cs)
    bounce = parse_bounce(msg)
    automated = automation_reason(msg, our_addresses)
    text = trim_reply(full) if not bounce else _bounce_text(bounce)
    headers: dict[str, Any] = {
        "subject": subject,
        "from": _fmt(senders[:1]),
        "to": _fmt(addresses(msg, "To", cs)),
        "cc": _fmt(addresses(msg, "Cc", cs)),
        "date": header(msg, "Date", cs),
        "message_id": message_id,
    }
    if reply_to := _fmt(addresses(msg, "Reply-To", cs)):
        headers["reply_to"] = reply_to
    if automated:
        headers["automated"] = automated
    if ids == []:
        headers["message_id_synthesized"] = True
    if text != full.strip():
        headers["original_text"] = full[:MAX_STORED_TEXT]
    if html is not None:
        headers["html"] = html[:MAX_STORED_TEXT]
    if bounce is not None:
        headers["bounce"] = {"action": bounce.action, "status": bounce.status,
                             "recipient": bounce.recipient, "diagnostic": bounce.diagnostic,
                             "original_ids": list(bounce.original_ids)}
    return ParsedMail(
        message_id=message_id, synthesized_id=not ids, sender=sender.strip(),
        sender_name=(sender_name or None), subject=subject, sent_at=parse_date(
            header(msg, "Date", cs)), text=text, full_text=full, html=html,
        in_reply_to=in_reply[0] if in_reply else None,
        references=tuple(refs[-MAX_REFERENCES:]), parts=parts, automated=automated,
        bounce=bounce, headers={k: v for k, v in headers.items() if v not in (None, "")},
    )


def to_inbound(mail: ParsedMail, attachments: tuple[Attachment, ...] = (),
               sender: str | None = None) -> InboundMessage:
    """The InboundMessage for a parsed mail (attachments already stored by the caller)."""
    return InboundMessage(
        channel=Channel.EMAIL, external_id=mail.message_id, sender=sender or mail.sender,
        text=mail.text, sender_name=mail.sender_name, attachments=attachments,
        reply_to=mail.in_reply_to, thread_refs=mail.references, sent_at=mail.sent_at,
        headers=mail.headers, automated=mail.automated is not None,
    )


def _fmt(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{n} <{a}>" if n else a for n, a in pairs)


def _body(msg: EmailMessage, cs: Sequence[str]) -> tuple[str | None, str | None, set[int]]:
    """(plain text, html, ids of the parts used as body)."""
    used: set[int] = set()
    plain = html = None
    try:
        part = msg.get_body(preferencelist=("plain",))
    except Exception:
        part = None
    if part is not None and not _is_attachment(part):
        plain = _text_of(part, cs)
        used.add(id(part))
    try:
        hpart = msg.get_body(preferencelist=("html",))
    except Exception:
        hpart = None
    if hpart is not None and not _is_attachment(hpart):
        html = _text_of(hpart, cs)
        used.add(id(hpart))
    if plain is None and html is None and not msg.is_multipart() \
            and msg.get_content_maintype() == "text" and msg.get_content_type() not in (
                "text/calendar",):
        plain = _text_of(msg, cs)
        used.add(id(msg))
    if plain is not None and not plain.strip() and html is not None:
        plain = None  # an empty text/plain beside a real HTML body
    return plain, html, used


def _is_attachment(part: Message) -> bool:
    return (part.get_content_disposition() == "attachment")


def _text_of(part: Message, cs: Sequence[str]) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    return decode_bytes(data, part.get_content_charset(), cs)


def _leaves(part: Message) -> list[Message]:
    """Leaf parts, not descending into attached messages (they are kept whole)."""
    if part.get_content_maintype() == "multipart":
        payload = part.get_payload()
        out: list[Message] = []
        for child in payload if isinstance(payload, list) else []:
            if isinstance(child, Message):
                out += _leaves(child)
        return out
    return [part]


def _attachments(msg: EmailMessage, body: set[int], cs: Sequence[str]) -> list[MailPart]:
    out: list[MailPart] = []
    for part in _leaves(msg):
        if id(part) in body:
            continue
        ctype = part.get_content_type()
        filename = _filename(part, cs)
        disposition = part.get_content_disposition()
        if ctype in ("text/plain", "text/html") and not filename and disposition != "attachment":
            continue  # an alternative of the body we did not pick
        if ctype == "message/delivery-status":
            continue  # read by the bounce parser; its text is in the event
        data = _bytes_of(part)
        if not data:
            continue
        cid = raw_header(part, "Content-ID", cs)
        out.append(MailPart(filename=filename, mime_type=ctype, data=data,
                            inline=disposition == "inline" and bool(cid),
                            content_id=cid.strip().strip("<>") if cid else None))
    return out


def _filename(part: Message, cs: Sequence[str]) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        return None
    name = decode_value(str(name), cs)
    name = re.sub(r"[\x00-\x1f/\\]", "_", name).strip(". ")
    return name[:200] or None


def _bytes_of(part: Message) -> bytes:
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            try:
                return inner[0].as_bytes(policy=policy.compat32)
            except Exception:
                return str(inner[0]).encode("utf-8", "replace")
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "replace") if isinstance(payload, str) else b""


def _fallback_text(parts: tuple[MailPart, ...], cs: Sequence[str]) -> str:
    """No text body: say what came instead (a calendar invite's summary, attachment names)."""
    for part in parts:
        if part.mime_type == "text/calendar":
            return calendar_summary(decode_bytes(part.data, None, cs))
    names = [p.filename or p.mime_type for p in parts]
    return f"[attachments: {', '.join(names)}]" if names else ""


def calendar_summary(ics: str) -> str:
    """A line or two from an iCalendar invite: what, when, where."""
    unfolded = re.sub(r"\r?\n[ \t]", "", ics)
    fields: dict[str, str] = {}
    for line in unfolded.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        name = key.split(";", 1)[0].upper()
        if name in ("SUMMARY", "DTSTART", "LOCATION", "METHOD") and name not in fields:
            fields[name] = value.replace("\\n", " ").replace("\\,", ",").strip()
    what = fields.get("SUMMARY", "event")
    text = f"[calendar {fields.get('METHOD', 'invite').lower()}] {what}"
    if "DTSTART" in fields:
        text += f", {fields['DTSTART']}"
    if "LOCATION" in fields:
        text += f", {fields['LOCATION']}"
    return text


def _bounce_text(bounce: Bounce) -> str:
    who = bounce.recipient or "the recipient"
    if bounce.action == "failed":
        head = f"Mail to {who} could not be delivered ({bounce.reason()})"
    elif bounce.action == "delayed":
        head = f"Mail to {who} is delayed ({bounce.reason()})"
    else:
        head = f"Delivery report for {who}: {bounce.action} {bounce.status}".strip()
    return head


__all__ = ["MailPart", "ParsedMail", "calendar_summary", "normalize_id", "parse_mail",
           "to_inbound"]
