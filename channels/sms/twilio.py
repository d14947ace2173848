"""Sending SMS through Twilio's REST API (plain aiohttp; the SDK blocks the loop).

POST /2010-04-01/Accounts/{AccountSid}/Messages.json with To, From (or MessagingServiceSid),
Body and a StatusCallback carrying our inbound token. 429 and 5xx are retried (honouring
Retry-After); an invalid or unreachable number is permanent; refused credentials too (the message
will not go until the config is fixed).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from channels.sms.choices import with_choices
from channels.sms.limits import check_sendable
from channels.sms.media import sms_parts
from channels.sms.reports import TWILIO_PERMANENT_CODES
from channels.sms.session import HttpSession
from crm.config import SmsSettings
from crm.errors import SendRejected
from crm.ports import RateLimits
from crm.types import Channel, DeliveryResult, OutboundMessage

log = structlog.get_logger(__name__)


def status_callback_url(public_url: str, token: str, outbox_id: int) -> str:
    return f"{public_url.rstrip('/')}/sms/twilio/status?token={quote(token, safe='')}" \
           f"&ob={outbox_id}"


def classify_error(status: int, body: dict[str, Any], retry_after: str | None
                   ) -> DeliveryResult:
    """A Twilio error answer as retry or permanent, with a sentence a manager can act on."""
    code = str(body.get("code") or "")
    detail = str(body.get("message") or "").strip()
    reason = f"Twilio {status}" + (f" error {code}" if code else "") + \
        (f": {detail}" if detail else "")
    if status == 429 or status >= 500:
        try:
            wait = float(retry_after) if retry_after else None
        except ValueError:
            wait = None
        return DeliveryResult.retry(reason, retry_after=wait)
    if status in (401, 403) and code not in TWILIO_PERMANENT_CODES:
        return DeliveryResult.permanent(
            f"{reason} (check [sms.twilio] account_sid and auth_token)", address_fault=False)
    # 21610: the recipient replied STOP to this sender at Twilio; only their START undoes it.
    return DeliveryResult.permanent(reason, opted_out=code == "21610")


class TwilioSender:
    channel = Channel.SMS

    def __init__(self, settings: SmsSettings, public_url: str, http: HttpSession) -> None:
        self.settings = settings
        self.twilio = settings.twilio
        self.public_url = public_url
        self.http = http
        self.limits = RateLimits(per_second=settings.rate_per_second)
        self.problem: str | None = None

    @property
    def messages_url(self) -> str:
        return (f"{self.twilio.api_base_url.rstrip('/')}/2010-04-01/Accounts/"
                f"{self.twilio.account_sid}/Messages.json")

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        text, shown = with_choices(message.text, message.choices, message.language,
                                   self.settings.max_segments)
        # Kept with the message: a bare number answers the choices only if they were shown.
        extra: dict[str, object] = {"choices_shown": shown} if message.choices else {}
        try:
            text, media = sms_parts(self.settings, message.address, text, message.attachments)
            seg = check_sendable(text, self.settings.max_segments, media=media)
        except SendRejected as e:
            return DeliveryResult.permanent(str(e), address_fault=False)
        form: list[tuple[str, str]] = [
            ("To", message.address),
            ("StatusCallback", status_callback_url(
                self.public_url, self.settings.inbound_token, message.outbox_id))]
        if text.strip() or not media:
            form.append(("Body", text))
        form += [("MediaUrl", url) for url in media]  # Twilio fetches each from our server
        if self.twilio.messaging_service_sid:
            form.append(("MessagingServiceSid", self.twilio.messaging_service_sid))
        else:
            form.append(("From", self.twilio.from_number))
        headers = {"Authorization": aiohttp.encode_basic_auth(self.twilio.account_sid,
                                                              self.twilio.auth_token)}
        try:
            async with self.http.get().post(self.messages_url, data=form,
                                        headers=headers) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = {"message": (await response.text(errors="replace"))[:200]}
        except (aiohttp.ClientError, TimeoutError) as e:
            self.problem = f"Twilio not reachable at {self.twilio.api_base_url}: {e or type(e)}"
            return DeliveryResult.retry(self.problem)
        if not isinstance(body, dict):
            body = {}
        if status in (200, 201) and body.get("sid"):
            self.problem = None
            try:
                segments = int(body.get("num_segments") or seg.segments)
            except (TypeError, ValueError):
                segments = seg.segments
            if media:
                extra["mms"] = len(media)
            return DeliveryResult.sent(str(body["sid"]), segments=segments,
                                       encoding=seg.encoding.value, **extra)
        result = classify_error(status, body, retry_after)
        if status in (401, 403):
            self.problem = result.error
            log.error("sms.twilio.auth_failed", error=result.error)
        return result
