"""Our outgoing mail: threaded (Message-ID of our domain, In-Reply-To, References, "Re:"),
plain text with an HTML alternative in which every character of the text is escaped.
"""

from __future__ import annotations

import hashlib
import html
import re
import uuid
from datetime import datetime
from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr

from channels.email.headers import normalize_id
from crm.i18n import t
from crm.types import OutboundMessage

MAX_REFERENCES = 20
_RE_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|ответ|отв)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s<>\"']+")


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower() or "localhost"


def make_message_id(message: OutboundMessage, from_address: str) -> str:
    """Stable for one outbox row, so a resend after a lost connection carries the same id and
    receiving servers and mail clients can drop the copy."""
    if message.outbox_id:
        basis = f"{message.outbox_id}|{message.address}|{message.subject}|{message.text}"
        digest = hashlib.sha256(basis.encode("utf-8", "replace")).hexdigest()[:16]
        local = f"crm.{message.outbox_id}.{digest}"
    else:
        local = f"crm.{uuid.uuid4().hex}"
    return f"{local}@{domain_of(from_address)}"


def reply_subject(subject: str | None, replying: bool, default: str) -> str:
    text = re.sub(r"\s+", " ", subject or "").strip()
    if not text:
        return default
    if replying and not _RE_PREFIX.match(text):
        return f"Re: {text}"
    return text


def render_html(text: str) -> str:
    """The HTML alternative of a plain text: escaped, links clickable, line breaks kept."""
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        out.append(html.escape(text[last:match.start()]))
        url = match.group(0).rstrip(".,;:!?)")
        out.append(f'<a href="{html.escape(url, quote=True)}">{html.escape(url)}</a>')
        last = match.start() + len(url)
    out.append(html.escape(text[last:]))
    body = "".join(out).replace("\r\n", "\n").replace("\n", "<br>\n")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>"
            f"<body><div style=\"font-family:sans-serif;white-space:normal\">{body}</div>"
            "</body></html>\n")


def _html_part(given: str) -> str:
    """A whole HTML document as it is; a fragment (a canned reply in Telegram's HTML, whose
    line breaks are newlines) in our document, its line breaks kept."""
    if given.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        return given
    body = given.replace("\r\n", "\n").replace("\n", "<br>\n")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>"
            f"<body><div style=\"font-family:sans-serif;white-space:normal\">{body}</div>"
            "</body></html>\n")


def with_choices(message: OutboundMessage) -> str:
    """The text with the message's choices as numbered lines (a reply of just the number picks
    one); choices that only another channel can offer are left out."""
    shown = [c for c in message.choices if c.request is None]
    if not shown or all(c.label == str(i) for i, c in enumerate(shown, 1)):
        return message.text
    lines = "\n".join(f"{i}. {c.label}" for i, c in enumerate(shown, 1))
    return f"{message.text.rstrip()}\n\n{lines}\n\n{t('reply_with_number', message.language)}"


def compose(message: OutboundMessage, *, from_address: str, from_name: str, message_id: str,
            now: datetime, default_subject: str,
            files: tuple[tuple[str, str, bytes], ...] = (),
            unsubscribe_mailbox: str | None = None) -> Message:
    """The mail for one outbound message. `files`: (filename, mime type, bytes) to attach.

    Built with the compat32 MIME classes and headers encoded here: several times faster than
    EmailMessage's header registry, which dominated the cost of a send.
    """
    plain = with_choices(message)
    text = plain if plain.endswith("\n") else plain + "\n"
    body = MIMEMultipart("alternative")
    body.attach(MIMEText(text, "plain", "utf-8"))
    body.attach(MIMEText(_html_part(message.html) if message.html else render_html(plain),
                         "html", "utf-8"))
    mail: Message = body
    if files:
        mail = MIMEMultipart("mixed")
        mail.attach(body)
        for filename, mime_type, data in files:
            maintype, _, subtype = (mime_type or "application/octet-stream").partition("/")
            part = MIMEBase(maintype, subtype or "octet-stream")
            part.set_payload(data)
            encoders.encode_base64(part)
            part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", filename))
            mail.attach(part)
    mail["From"] = formataddr((from_name, from_address), charset="utf-8") if from_name \
        else from_address
    mail["To"] = message.address
    reply_to = normalize_id(message.reply_to) if message.reply_to else None
    mail["Subject"] = _encoded(reply_subject(message.subject, bool(reply_to), default_subject))
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = f"<{message_id}>"
    if reply_to:
        mail["In-Reply-To"] = f"<{reply_to}>"
    refs = [normalize_id(r) for r in message.thread_refs if r]
    if reply_to:
        refs.append(reply_to)
    refs = list(dict.fromkeys(r for r in refs if r))[-MAX_REFERENCES:]
    if refs:
        mail["References"] = " ".join(f"<{r}>" for r in refs)
    # Our own mail coming back to us (a forward rule, a list) is recognised and never answered.
    mail["X-Loop"] = from_address
    url = message.options.get("unsubscribe_url")
    if url or message.options.get("list_unsubscribe"):
        # Bulk mail (campaigns) says how to stop it: a mail to our mailto address, or one
        # click (RFC 8058) on the link when there is one.
        targets = [f"<mailto:{unsubscribe_mailbox}?subject=unsubscribe>"] \
            if unsubscribe_mailbox else []
        if url:
            targets.append(f"<{url}>")
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if targets:
            mail["List-Unsubscribe"] = ", ".join(targets)
        mail["Precedence"] = "bulk"
    if message.options.get("auto_submitted"):
        mail["Auto-Submitted"] = str(message.options["auto_submitted"])
    return mail


def _encoded(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()
