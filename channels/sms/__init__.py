"""The SMS channel: Kannel or Twilio, inbound webhooks, delivery reports, keywords, segments."""

from __future__ import annotations

import re

import structlog
from aiohttp import web

from channels.sms.kannel import KannelSender
from channels.sms.limits import check_sendable
from channels.sms.media import attachments_of, sms_parts
from channels.sms.media_in import TwilioMedia
from channels.sms.receiver import SmsReceiver
from channels.sms.runtime import SmsRuntime
from channels.sms.session import HttpSession
from channels.sms.twilio import TwilioSender
from channels.sms.webhooks import SmsWebhooks
from crm.errors import ConfigError
from crm.events import MessageQueued
from crm.models import Identity, Message, Outbox
from crm.ports import ChannelRuntime
from crm.services import Core
from crm.types import Channel, Direction

__all__ = ["build", "check_sendable"]

log = structlog.get_logger(__name__)

# The token goes into URLs that Kannel rewrites (%d, %A): no characters that need escaping.
_URL_SAFE = re.compile(r"^[A-Za-z0-9_.~-]{16,}$")


def build(core: Core, web_app: web.Application) -> ChannelRuntime | None:
    """The SMS channel, or None (logged) when it is not configured."""
    settings = core.settings
    sms = settings.sms
    if not sms.enabled:
        log.info("channel.off", channel="sms",
                 how='set [sms] provider = "kannel" (with [sms.kannel] username and password) '
                     'or "twilio" (with [sms.twilio] account_sid and auth_token)')
        return None
    if not _URL_SAFE.match(sms.inbound_token):
        raise ConfigError(
            "[sms] inbound_token: required when the SMS channel is on; at least 16 letters, "
            "digits, '-', '_', '.' or '~' (it goes into the gateway's callback URLs)")
    http = HttpSession()
    public_url = settings.http.public_url
    sender: KannelSender | TwilioSender = KannelSender(sms, public_url, http) \
        if sms.provider == "kannel" else TwilioSender(sms, public_url, http)
    receiver = SmsReceiver(core)
    media = TwilioMedia(http, core.files, sms.twilio) if sms.provider == "twilio" else None
    SmsWebhooks(settings, receiver, media).mount(web_app)

    async def refuse_unsendable(event: MessageQueued) -> None:
        # In the unit of work of Conversations.send: raising SendRejected rolls the message
        # back, and the manager who tried gets the reason.
        if event.channel is not Channel.SMS or event.direction is not Direction.OUT:
            return
        message = await Message.get(id=event.message_id)
        row = await Outbox.get_or_none(id=event.outbox_id) if event.outbox_id else None
        identity = await Identity.get_or_none(id=message.identity_id)
        files = attachments_of(row.payload.get("attachments") or [] if row else  # type: ignore[arg-type]
                               message.attachments)
        text, urls = sms_parts(sms, identity.address if identity else "", message.text, files)
        check_sendable(text, sms.max_segments, media=urls)

    core.bus.subscribe(MessageQueued, refuse_unsendable, phase="in_transaction")
    log.info("channel.configured", channel="sms", provider=sms.provider)
    return SmsRuntime(sender, http)
