"""The email channel: a support mailbox read over IMAP IDLE, answers sent over SMTP.

Modules: parsing (raw mail → InboundMessage, pure), headers/text/loops (its pure helpers),
attachments (content-addressed files), compose (our outgoing mail, pure), reader (IMAP),
inbound (one mail into the timeline), sender (SMTP), guard (cap on automatic mail), runtime.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from channels.email.attachments import AttachmentStore, mail_store
from channels.email.guard import AutoMailCap
from channels.email.inbound import MailIngester
from channels.email.reader import ImapReader, ReaderTuning
from channels.email.runtime import EmailRuntime
from channels.email.sender import SmtpSender
from crm.events import MessageQueued
from crm.leader import Leadership, lock_id_for
from crm.ports import ChannelRuntime
from crm.services import Core

log = structlog.get_logger(__name__)


def build(core: Core, web_app: web.Application, *,
          tuning: ReaderTuning | None = None) -> ChannelRuntime | None:
    """The email channel, or None (logged) when it is not configured."""
    settings = core.settings.email
    if not settings.enabled:
        log.info("channel.off", channel="email",
                 how="set imap_host, imap_username, smtp_host and from_address in [email]")
        return None
    ours = frozenset(a.lower() for a in (settings.from_address, settings.imap_username,
                                         settings.smtp_username) if a and "@" in a)
    store = AttachmentStore(mail_store(core.settings, core.files))
    ingester = MailIngester(core, store, ours, settings.fallback_charsets)
    leadership = Leadership(core.settings.database.url, lock_id_for(
        f"email:{settings.imap_username}@{settings.imap_host}/{settings.imap_folder}"))
    reader = ImapReader(settings, ingester.handle, tuning=tuning, clock=core.clock,
                        leadership=leadership)
    sender = SmtpSender(settings, clock=core.clock)
    core.bus.subscribe(MessageQueued, AutoMailCap(settings.auto_reply_cap_per_hour, core.clock),
                       phase="in_transaction")
    return EmailRuntime(reader, sender)
