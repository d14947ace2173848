"""One fetched mail into the inbox: parse, keep attachments, record bounces, hand it on.

Returns only after the commit, so the reader may advance its checkpoint past the mail. Errors of
the database propagate (the mail is fetched again later); a mail that cannot be used at all (no
usable sender) is logged and skipped: it stays in the mailbox, nothing is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from channels.email.attachments import AttachmentStore
from channels.email.headers import DEFAULT_FALLBACKS
from channels.email.loops import Bounce
from channels.email.parsing import ParsedMail, parse_mail, to_inbound
from crm.errors import InvalidAddress
from crm.identity import normalize_email
from crm.models import Identity, Message
from crm.services import Core
from crm.types import Channel, DeliveryStatus, Direction

log = structlog.get_logger(__name__)


class MailIngester:
    def __init__(self, core: Core, store: AttachmentStore, our_addresses: frozenset[str],
                 fallback_charsets: Sequence[str] = DEFAULT_FALLBACKS) -> None:
        self.core = core
        self.store = store
        self.our_addresses = our_addresses
        self.fallback_charsets = tuple(fallback_charsets)  # [email] fallback_charsets

    async def handle(self, raw: bytes, uid: int | None = None) -> None:
        try:
            mail = parse_mail(raw, self.our_addresses, self.fallback_charsets)
        except Exception:  # a bug of ours on odd mail: keep reading the mailbox
            log.exception("email.unparseable", uid=uid, size=len(raw))
            return
        attachments = tuple(await asyncio.to_thread(
            lambda: [self.store.save(p) for p in mail.parts]))
        # A bounce of a mail we sent belongs in the timeline of the customer it is about, not of
        # MAILER-DAEMON. Anything else claiming to be a bounce stays with its real sender: anyone
        # can write a multipart/report naming someone else's address.
        matched = await self._sent_original(mail.bounce) if mail.bounce else None
        about = mail.bounce.recipient if mail.bounce and matched is not None else None
        candidates = [a for a in (about, mail.sender) if a]
        for sender in candidates:
            try:
                normalize_email(sender)
            except InvalidAddress:
                continue
            await self.core.inbox.receive(to_inbound(mail, attachments, sender))
            break
        else:
            log.error("email.no_usable_sender", uid=uid, message_id=mail.message_id,
                      sender=mail.sender, subject=mail.subject[:200],
                      hint="the mail stays in the mailbox; it has no usable From address")
        if mail.bounce is not None:
            await self._bounce(mail, mail.bounce)

    async def _sent_original(self, bounce: Bounce) -> Message | None:
        """The message of ours a report is about, if it names one we sent to that recipient."""
        for original_id in bounce.original_ids:
            original = await Message.filter(channel=Channel.EMAIL, external_id=original_id,
                                            direction=Direction.OUT).first()
            if original is None:
                continue
            identity = await Identity.filter(id=original.identity_id).first() \
                if original.identity_id else None
            if bounce.recipient and identity is not None:
                try:
                    if normalize_email(bounce.recipient) != identity.address:
                        continue
                except InvalidAddress:
                    continue
            return original
        return None

    async def _bounce(self, mail: ParsedMail, bounce: Bounce) -> None:
        if bounce.action in ("delivered", "relayed", "expanded"):
            status = DeliveryStatus.DELIVERED
        elif bounce.failed:
            status = DeliveryStatus.FAILED
        else:
            return  # "delayed": the server keeps trying; the event in the timeline says so
        original = await self._sent_original(bounce)
        if original is None:
            # Not about a mail we sent (or forged): it marks nothing. It is in the timeline of
            # its real sender for a person to read.
            log.info("email.bounce_unmatched", ids=list(bounce.original_ids),
                     dsn=mail.message_id)
            return
        if original.delivery_status is status:
            return  # the same report fetched again
        await self.core.outbox.record_delivery(
            Channel.EMAIL, str(original.external_id), status, bounce.reason(),
            permanent=bounce.permanent)
        log.info("email.bounce_recorded", message_id=original.id, status=status.value,
                 permanent=bounce.permanent)
