"""Inbound SMS from the gateways' webhooks, as InboundMessage. Pure: no I/O.

Kannel's sms-service calls our get-url with `from`=%p, `to`=%P, `text`=%a, `id`=%I (Kannel's
message UUID, the dedupe key) and `time`=%t; Twilio posts a form (MessageSid, From, To, Body,
NumMedia, MediaUrl0…). Numbers become E.164 here; a message without a provider id gets a stable
hash of sender, time and text as its id, so a gateway's retry stores it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

from crm.identity import normalize_phone
from crm.types import Attachment, Channel, InboundMessage


def stable_id(prefix: str, sender: str, when: str, text: str) -> str:
    digest = hashlib.sha256(f"{sender}\n{when}\n{text}".encode()).hexdigest()[:32]
    return f"{prefix}-h-{digest}"


def _kannel_time(raw: str) -> datetime | None:
    try:  # %t: "2026-11-23 14:03:24", in UTC for Kannel's own clock
        return datetime.strptime(raw.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def kannel_message(query: Mapping[str, str], default_region: str) -> InboundMessage:
    """The SMS in a Kannel get-url call; ValueError/InvalidAddress when it is not one."""
    raw_sender = (query.get("from") or "").strip()
    if not raw_sender:
        raise ValueError("no sender: the get-url needs from=%p")
    sender = normalize_phone(raw_sender, default_region)
    text = query.get("text") or ""
    when = query.get("time") or ""
    kannel_id = (query.get("id") or "").strip()
    external_id = f"kannel-i-{kannel_id}" if kannel_id else stable_id("kannel", sender, when,
                                                                      text)
    headers = {"to": query["to"]} if query.get("to") else {}
    return InboundMessage(channel=Channel.SMS, external_id=external_id, sender=sender,
                          text=text, sent_at=_kannel_time(when), headers=headers)


def twilio_message(form: Mapping[str, str], default_region: str) -> InboundMessage:
    """The SMS (or MMS) in a Twilio inbound webhook."""
    raw_sender = (form.get("From") or "").strip()
    if not raw_sender:
        raise ValueError("no From in the Twilio webhook")
    sender = normalize_phone(raw_sender, default_region)
    text = form.get("Body") or ""
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    external_id = sid or stable_id("twilio", sender, "", text)
    try:
        media = int(form.get("NumMedia") or 0)
    except ValueError:
        media = 0
    attachments = tuple(
        Attachment(kind="file", file_id=form[f"MediaUrl{i}"],
                   mime_type=form.get(f"MediaContentType{i}") or None)
        for i in range(min(media, 10)) if form.get(f"MediaUrl{i}"))
    headers = {"to": form["To"]} if form.get("To") else {}
    return InboundMessage(channel=Channel.SMS, external_id=external_id, sender=sender,
                          text=text, attachments=attachments, headers=headers)
