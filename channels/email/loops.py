"""Mail that a machine wrote: auto-replies, list mail, our own loops, delivery status reports.

Such mail is stored as a system event and never answered automatically (RFC 3834), so two
auto-responders cannot talk to each other forever through us. Bounces (RFC 3464 delivery status
notifications, and the plain-text kind some servers still send) are read for the message they
are about and whether the failure is permanent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, message_from_string, policy
from email.message import Message

from channels.email.headers import header, message_ids, raw_header

_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
_BULK = frozenset({"bulk", "junk", "list", "auto_reply"})
_BOUNCE_FROM = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|returned mail|delivery (status notification|failure|has failed)|"
    r"failure notice|mail delivery failed|not delivered|недоставлен|не доставлено)", re.I)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])\d\d[ -]")


def automation_reason(msg: Message, our_addresses: frozenset[str]) -> str | None:
    """Why this mail was written by a machine, or None for a person's mail."""
    auto = (header(msg, "Auto-Submitted") or "").strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto}"
    precedence = (header(msg, "Precedence") or "").strip().lower()
    if precedence in _BULK:
        return f"Precedence: {precedence}"
    suppress = (header(msg, "X-Auto-Response-Suppress") or "").strip()
    if suppress and suppress.lower() != "none":
        return f"X-Auto-Response-Suppress: {suppress}"
    for name in _AUTO_HEADERS:
        if header(msg, name) is not None:
            return f"{name}: {header(msg, name)}"
    loops = " ".join(h for k, h in msg.raw_items() if k.lower() == "x-loop").lower()
    if loops and any(addr in loops for addr in our_addresses):
        return "X-Loop: our own address"
    if is_delivery_report(msg):
        return "delivery status notification"
    return None


def is_delivery_report(msg: Message) -> bool:
    ctype = msg.get_content_type()
    if ctype == "multipart/report":
        return True
    if any(p.get_content_type() == "message/delivery-status" for p in msg.walk()):
        return True
    sender = (raw_header(msg, "From") or "").lower()
    address = sender.rsplit("<", 1)[-1].strip(" >")
    return bool(_BOUNCE_FROM.match(address)) and bool(
        _BOUNCE_SUBJECT.search(header(msg, "Subject") or ""))


@dataclass(frozen=True, slots=True)
class Bounce:
    """What a delivery status notification says about one message we sent."""

    original_ids: tuple[str, ...]  # candidates for our Message-ID, most specific first
    recipient: str | None
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # e.g. 5.1.1
    diagnostic: str

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    @property
    def permanent(self) -> bool:
        return self.failed and self.status.startswith("5")

    def reason(self) -> str:
        parts = [f"bounce {self.status}" if self.status else "bounce"]
        if self.diagnostic:
            parts.append(self.diagnostic)
        return ": ".join(parts)[:480]


def parse_bounce(msg: Message) -> Bounce | None:
    """The bounce this mail reports, or None when it is not a delivery report."""
    if not is_delivery_report(msg):
        return None
    fields = _dsn_fields(msg)
    ids: list[str] = []
    for key in ("original-message-id",):
        ids += message_ids(fields.get(key))
    original = _original_headers(msg)
    if original is not None:
        ids += message_ids(raw_header(original, "Message-ID"))
    ids += message_ids(raw_header(msg, "In-Reply-To"))
    ids += list(reversed(message_ids(raw_header(msg, "References"))))
    if not ids:  # a plain-text bounce quoting the original headers in its body
        ids += message_ids(" ".join(re.findall(r"^Message-ID:\s*(\S+)", _body_text(msg),
                                               re.M | re.I)))
    recipient = _address(fields.get("final-recipient") or fields.get("original-recipient"))
    if recipient is None and original is not None:
        recipient = _address(raw_header(original, "To"))
    action = (fields.get("action") or "").strip().lower()
    status_match = _STATUS.search(fields.get("status") or "")
    diagnostic = re.sub(r"\s+", " ", fields.get("diagnostic-code") or "").strip()
    diagnostic = diagnostic.split(";", 1)[-1].strip() if ";" in diagnostic[:10] else diagnostic
    if not action or not status_match:  # the non-standard kind: guess from the text
        body = _body_text(msg)
        status_match = status_match or _STATUS.search(body)
        if not action:
            action = "delayed" if re.search(r"\b(delayed|will (retry|keep trying))\b", body,
                                            re.I) else "failed"
        if not diagnostic:
            code = _SMTP_CODE.search(body)
            diagnostic = body[code.start():code.start() + 200].splitlines()[0] if code else ""
    status = status_match.group(0) if status_match else ""
    if not status and action == "failed":
        code = _SMTP_CODE.search(diagnostic)
        status = f"{code.group(1)}.0.0" if code else "5.0.0"
    unique = tuple(dict.fromkeys(i for i in ids if i))
    return Bounce(unique, recipient, action, status, diagnostic)


def _dsn_fields(msg: Message) -> dict[str, str]:
    """The per-message and (first) per-recipient fields of a message/delivery-status part."""
    fields: dict[str, str] = {}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        if not blocks:  # some parsers keep it as text
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
            blocks = [message_from_string(b, policy=policy.compat32)
                      for b in re.split(r"\r?\n\r?\n", text) if b.strip()]
        for block in blocks:
            if not isinstance(block, Message):
                continue
            for key, value in block.raw_items():
                fields.setdefault(key.lower(), re.sub(r"\s+", " ", str(value)).strip())
        break
    return fields


def _original_headers(msg: Message) -> Message | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if ctype in ("text/rfc822-headers", "message/global-headers"):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                return message_from_bytes(data, policy=policy.compat32)
    return None


def _body_text(msg: Message) -> str:
    chunks: list[str] = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                chunks.append(data.decode("utf-8", "replace"))
    return "\n".join(chunks)


def _address(value: str | None) -> str | None:
    if not value:
        return None
    token = value.split(";", 1)[-1].strip().strip("<>").strip()
    return token if "@" in token else None
