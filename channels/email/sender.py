"""Sending mail over SMTP: one connection reused across sends, reconnected when it drops.

What the server answers decides the outcome: a refused recipient (5xx) is permanent and marks the
address; 4xx answers, a lost connection or a server that is down are retried by the outbox.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

import aiosmtplib
import structlog

from channels.email.compose import compose, make_message_id
from channels.email.tls import client_context, describe, tls_error
from crm.clock import Clock, utcnow
from crm.config import EmailSettings
from crm.i18n import t
from crm.ports import RateLimits
from crm.types import Channel, DeliveryResult, OutboundMessage

log = structlog.get_logger(__name__)


class SmtpSender:
    """The email channel's Sender (crm/ports.py)."""

    channel = Channel.EMAIL

    def __init__(self, settings: EmailSettings, *, clock: Clock = utcnow,
                 timeout: float = 30.0) -> None:
        self.settings = settings
        self.clock = clock
        self.timeout = timeout
        self.limits = RateLimits(per_second=settings.smtp_rate_per_second)
        self._smtp: aiosmtplib.SMTP | None = None
        self._connect_lock = asyncio.Lock()
        self.connections = 0  # how many times we connected (tests and the bench read it)
        self.last_error: str | None = None
        # Built once: a bad tls_ca_file is an error at start, not at every send.
        self._tls = client_context(settings) if settings.smtp_security != "none" else None

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host, port=s.smtp_port, timeout=self.timeout,
            use_tls=s.smtp_security == "ssl",
            start_tls=s.smtp_security == "starttls",  # False: no STARTTLS even if offered
            tls_context=self._tls, validate_certs=True,
            username=s.smtp_username or None, password=s.smtp_password or None,
        )

    async def _client(self) -> aiosmtplib.SMTP:
        async with self._connect_lock:
            smtp = self._smtp
            if smtp is None or not smtp.is_connected:
                smtp = self._new_client()
                await smtp.connect()
                self._smtp = smtp
                self.connections += 1
                log.info("email.smtp_connected", host=self.settings.smtp_host,
                         port=self.settings.smtp_port)
            return smtp

    async def _drop(self, smtp: aiosmtplib.SMTP) -> None:
        async with self._connect_lock:
            if self._smtp is smtp:
                self._smtp = None
        smtp.close()

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await asyncio.wait_for(smtp.quit(), 5)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                smtp.close()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        s = self.settings
        message_id = make_message_id(message, s.from_address)
        try:
            mail = compose(message, from_address=s.from_address, from_name=s.from_name,
                           message_id=message_id, now=self.clock(),
                           default_subject=t("email_default_subject", message.language),
                           files=_load_files(message),
                           unsubscribe_mailbox=s.unsubscribe_mailbox)
        except (ValueError, TypeError, OSError) as e:
            return DeliveryResult.permanent(f"cannot build the mail: {e}", address_fault=False)
        # A reused connection may have been closed by the server while idle: one immediate
        # reconnect and resend is normal; a second failure goes back to the outbox's backoff.
        for attempt in (1, 2):
            smtp: aiosmtplib.SMTP | None = None
            try:
                smtp = await self._client()
                errors, _ = await smtp.send_message(mail, sender=s.from_address,
                                                    recipients=[message.address])
            except aiosmtplib.SMTPRecipientsRefused as e:
                return self._refused(e.recipients[0] if e.recipients else None, message)
            except aiosmtplib.SMTPRecipientRefused as e:
                return self._refused(e, message)
            except aiosmtplib.SMTPAuthenticationError as e:
                self.last_error = (f"SMTP login as {s.smtp_username!r} failed: {e.code} "
                                   f"{e.message} (check smtp_username/smtp_password)")
                log.error("email.smtp_auth_failed", error=self.last_error)
                if smtp is not None:
                    await self._drop(smtp)
                return DeliveryResult.retry(self.last_error)
            except aiosmtplib.SMTPResponseException as e:
                if smtp is not None and not smtp.is_connected:
                    await self._drop(smtp)
                if e.code == 421 and attempt == 1:
                    continue  # "closing connection": reconnect once
                self.last_error = f"SMTP {e.code} {e.message}"
                if 500 <= e.code < 600 and isinstance(e, aiosmtplib.SMTPDataError):
                    # The content was refused (size, spam filter), not the address.
                    return DeliveryResult.permanent(
                        f"rejected by the SMTP server: {e.code} {e.message}",
                        address_fault=False)
                return DeliveryResult.retry(self.last_error)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError,
                    aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPException, OSError,
                    TimeoutError) as e:
                if smtp is not None:
                    await self._drop(smtp)
                tls = tls_error(e)
                if tls is not None:  # retried by the outbox; never sent unverified
                    self.last_error = f"SMTP {s.smtp_host}:{s.smtp_port}: " + \
                        describe(tls, "the server")
                    log.error("email.smtp_tls_failed", error=self.last_error)
                    return DeliveryResult.retry(self.last_error)
                self.last_error = f"SMTP {s.smtp_host}:{s.smtp_port}: {type(e).__name__}: {e}"
                if attempt == 1 and smtp is not None:
                    continue  # the reused connection was stale
                log.warning("email.smtp_unavailable", error=self.last_error)
                return DeliveryResult.retry(self.last_error)
            if errors:  # partially refused: we send to one recipient, so this is that one
                response = next(iter(errors.values()))
                return self._refused(response, message)
            self.last_error = None
            return DeliveryResult.sent(message_id)
        return DeliveryResult.retry(self.last_error or "SMTP connection lost")

    def _refused(self, e: object, message: OutboundMessage) -> DeliveryResult:
        code = int(getattr(e, "code", 0) or 0)
        text = str(getattr(e, "message", "") or e)
        error = f"recipient {message.address} refused: {code} {text}"
        if 500 <= code < 600:
            return DeliveryResult.permanent(error)
        return DeliveryResult.retry(error)


def _load_files(message: OutboundMessage) -> tuple[tuple[str, str, bytes], ...]:
    files: list[tuple[str, str, bytes]] = []
    for a in message.attachments:
        if not a.path:
            continue
        path = Path(a.path)
        data = path.read_bytes()  # a missing file: OSError, a permanent failure of this mail
        mime = a.mime_type or mimetypes.guess_type(a.filename or path.name)[0] or \
            "application/octet-stream"
        files.append((a.filename or path.name, mime, data))
    return tuple(files)
