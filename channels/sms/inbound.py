"""Inbound SMS from the gateways' webhooks, as InboundMessage. Pure: no I/O.

Kannel's sms-service calls our get-url with `from`=%p, `to`=%P, `text`=%a, `id`=%I (Kannel's
message UUID, the dedupe key) and `time`=%t. With post-url instead, the text is the request body
(in the Content-Type's charset) and the URL carries what its escapes fill in (at least id=%I);
what the URL leaves out comes from Kannel's headers: X-Kannel-From (sent only with
`send-sender = true`), X-Kannel-To and X-Kannel-Time. Twilio posts a form (MessageSid, From,
To, Body, NumMedia, MediaUrl0…). Numbers become E.164 here, any number of possible length
(crm/identity.py normalize_sms_sender); short codes and alphanumeric senders are kept as they
came, so no message is refused for its sender. A message without a provider id gets a stable
hash of sender, time and text as its id, so a gateway's retry stores it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

from crm.identity import normalize_sms_sender
from crm.types import Attachment, Channel, InboundMessage


def stable_id(prefix: str, sender: str, when: str, text: str) -> str:
    digest = hashlib.sha256(f"{sender}\n{when}\n{text}".encode()).hexdigest()[:32]
    return f"{prefix}-h-{digest}"


def _kannel_time(raw: str) -> datetime | None:
    try:  # %t: "2026-11-23 14:03:24", in UTC for Kannel's own clock
        return datetime.strptime(raw.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


# post-url headers (Kannel 1.4.5 smsbox.c, TRANSTYPE_POST_URL) for the get-url field names.
KANNEL_POST_HEADERS = (("from", "X-Kannel-From"), ("to", "X-Kannel-To"),
                       ("time", "X-Kannel-Time"))
_UCS2 = "2"  # X-Kannel-Coding of a UCS-2 message (DC_UCS2)


def _post_text(body: bytes, charset: str | None, coding: str | None) -> str:
    """The body of a post-url call as text. Kannel 1.4.5 labels UTF-8 and UTF-16BE text
    (text/plain; charset=...); older Kannel sent UCS-2 as application/octet-stream with
    X-Kannel-Coding: 2. An unknown charset is read as UTF-8 rather than refused: Kannel would
    only send it again."""
    if charset is None and (coding or "").strip() == _UCS2:
        charset = "utf-16-be"
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def kannel_post_fields(query: Mapping[str, str], headers: Mapping[str, str], body: bytes,
                       charset: str | None) -> dict[str, str]:
    """A Kannel post-url call as the fields of a get-url call, for `kannel_message`: the URL's
    own values win; the headers fill in what it lacks; the body is the text (unless the URL
    carries text=%a too). `headers` should be case-insensitive (aiohttp's are)."""
    fields = dict(query)
    for name, header in KANNEL_POST_HEADERS:
        if not (fields.get(name) or "").strip() and headers.get(header):
            fields[name] = headers[header]
    if "text" not in fields:
        fields["text"] = _post_text(body, charset, headers.get("X-Kannel-Coding"))
    return fields


def kannel_message(query: Mapping[str, str], default_region: str) -> InboundMessage:
    """The SMS in a Kannel get-url call (or a post-url call's `kannel_post_fields`);
    ValueError/InvalidAddress when it is not one."""
    raw_sender = (query.get("from") or "").strip()
    if not raw_sender:
        raise ValueError("no sender: the get-url needs from=%p (a post-url: from=%p, or "
                         "send-sender = true for X-Kannel-From)")
    sender = normalize_sms_sender(raw_sender, default_region)
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
    sender = normalize_sms_sender(raw_sender, default_region)
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
