"""Sending SMS through Kannel's sendsms HTTP interface, with a delivery-report URL back to us.

202 means Kannel queued it (sent); 403 means our credentials are wrong (permanent: the message
will not go until the config is fixed); 4xx otherwise is a request Kannel will never accept;
5xx and connection errors are retried. Text outside GSM-7 goes with charset=UTF-8 and coding=2
(UCS-2), or Kannel would turn Cyrillic into question marks.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import aiohttp
import structlog

from channels.sms.choices import with_choices
from channels.sms.limits import check_sendable
from channels.sms.media import sms_parts
from channels.sms.session import HttpSession
from crm.config import SmsSettings
from crm.errors import SendRejected
from crm.ports import RateLimits
from crm.sms_encoding import Encoding
from crm.types import Channel, DeliveryResult, OutboundMessage

log = structlog.get_logger(__name__)

DLR_MASK = 31  # delivered, undelivered, queued on SMSC, accepted by SMSC, rejected by SMSC


def outbound_id(outbox_id: int) -> str:
    """Our id for a message sent through Kannel (Kannel's sendsms returns none); URL-safe."""
    return f"kannel-{outbox_id}-{uuid.uuid4().hex[:12]}"


def dlr_url(public_url: str, token: str, outbox_id: int, external_id: str) -> str:
    """Kannel fills %d (DLR code) and %A (SMSC answer); our values carry no '%'."""
    return (f"{public_url.rstrip('/')}/sms/kannel/dlr?token={quote(token, safe='')}"
            f"&ob={outbox_id}&id={external_id}&status=%d&answer=%A")


class KannelSender:
    channel = Channel.SMS

    def __init__(self, settings: SmsSettings, public_url: str, http: HttpSession) -> None:
        self.settings = settings
        self.kannel = settings.kannel
        self.public_url = public_url
        self.http = http
        self.limits = RateLimits(per_second=settings.rate_per_second)
        self.problem: str | None = None  # last config/connection trouble, for health()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        text, shown = with_choices(message.text, message.choices, message.language,
                                   self.settings.max_segments)
        # Kept with the message: a bare number answers the choices only if they were shown.
        extra = {"choices_shown": shown} if message.choices else {}
        try:
            text, _ = sms_parts(self.settings, message.address, text, message.attachments)
            seg = check_sendable(text, self.settings.max_segments)
        except SendRejected as e:
            return DeliveryResult.permanent(str(e), address_fault=False)
        external_id = outbound_id(message.outbox_id)
        params = {
            "username": self.kannel.username, "password": self.kannel.password,
            "to": message.address, "text": text, "charset": "UTF-8",
            "coding": "2" if seg.encoding is Encoding.UCS2 else "0",
            "dlr-mask": str(DLR_MASK),
            "dlr-url": dlr_url(self.public_url, self.settings.inbound_token,
                               message.outbox_id, external_id),
        }
        if self.kannel.sender:
            params["from"] = self.kannel.sender
        try:
            session = self.http.get()
            async with session.get(self.kannel.sendsms_url, params=params) as response:
                body = (await response.text(errors="replace")).strip()[:200]
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as e:
            self.problem = f"Kannel not reachable at {self.kannel.sendsms_url}: {e or type(e)}"
            return DeliveryResult.retry(self.problem)
        if status in (200, 202):
            self.problem = None
            return DeliveryResult.sent(external_id, segments=seg.segments,
                                       encoding=seg.encoding.value, **extra)
        if status == 403:
            self.problem = ("Kannel refused our credentials (403): check [sms.kannel] username "
                            "and password against Kannel's sendsms-user")
            log.error("sms.kannel.auth_failed", body=body)
            return DeliveryResult.permanent(self.problem, address_fault=False)
        if status >= 500 or status == 429:
            return DeliveryResult.retry(f"Kannel answered {status}: {body}")
        return DeliveryResult.permanent(f"Kannel refused the message ({status}): {body}")
