"""TLS as a user meets it: mail read over IMAPS and IMAP STARTTLS, answers sent over SMTPS and
SMTP STARTTLS with a login, the servers' certificate trusted through `tls_ca_file`; and a server
whose certificate that CA did not sign is refused, with a clear error and nothing lost."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import structlog.testing

from crm.errors import ConfigError
from crm.models import Message, Outbox
from crm.types import Channel, DeliveryStatus, OutboundMessage, OutboxState
from tests.channels.email.certs import TlsFiles
from tests.channels.email.conftest import email_settings, mail, running
from tests.conftest import make_settings
from tests.support.dovecot import Dovecot, wait_until
from tests.support.smtp import SmtpServer


def uid() -> str:
    return uuid.uuid4().hex[:12]


def tls_settings(db: str, dovecot: Dovecot, smtp: SmtpServer, user: str, tmp: Any,
                 security: str, ca: str) -> Any:
    port = dovecot.ssl_port if security == "ssl" else dovecot.port
    return email_settings(db, dovecot, smtp, user, tmp, imap_port=port,
                          imap_security=security, smtp_security=smtp.security, tls_ca_file=ca)


async def _status(message_id: int, status: DeliveryStatus) -> bool:
    return (await Message.get(id=message_id)).delivery_status is status


@pytest.mark.parametrize("security", ["ssl", "starttls"])
async def test_mail_in_and_reply_out_over_tls(
        security: str, db: str, dovecot: Dovecot, mailbox: str, tls_files: TlsFiles,
        smtp_ssl: SmtpServer, smtp_starttls: SmtpServer, tmp_path: Any) -> None:
    smtp = smtp_ssl if security == "ssl" else smtp_starttls
    customer = f"tls{uid()}@customer.org"
    settings = tls_settings(db, dovecot, smtp, mailbox, tmp_path, security, tls_files.ca)
    async with running(settings) as svc:
        await svc.idle()
        await dovecot.append(mailbox, mail(f"Tia <{customer}>", "Secure?", "Over TLS please.",
                                           message_id=f"{uid()}@customer.org"))
        event = (await svc.inbox.wait(1))[0]
        inbound = await Message.get(id=event.message_id)
        assert inbound.text == "Over TLS please."
        out = await svc.core.conversations.send(inbound.customer_id, "Encrypted answer")
        sent = (await smtp.wait_for(customer))[0]
        body = sent.mail.get_body(("plain",))
        assert body is not None and body.get_content().startswith("Encrypted answer")
        assert sent.tls and sent.authenticated
        await wait_until(lambda: _status(out.id, DeliveryStatus.SENT), what="sent status")
        assert svc.runtime.health().state == "up"
    # The reader's login went over TLS (the test's own APPEND client logs in without it; on
    # the IMAPS port every login is encrypted).
    await wait_until(lambda: _async(any(", TLS," in line for line in dovecot.logins(mailbox))),
                     what="a TLS login in Dovecot's log")


@pytest.mark.parametrize(("imap", "smtp_security"), [("ssl", "starttls"), ("starttls", "ssl")])
async def test_certificate_not_signed_by_the_configured_ca_is_refused(
        imap: str, smtp_security: str, db: str, dovecot: Dovecot, mailbox: str,
        tls_files: TlsFiles, smtp_ssl: SmtpServer, smtp_starttls: SmtpServer,
        tmp_path: Any) -> None:
    smtp = smtp_ssl if smtp_security == "ssl" else smtp_starttls
    customer = f"untrusted{uid()}@customer.org"
    settings = tls_settings(db, dovecot, smtp, mailbox, tmp_path, imap, tls_files.other_ca)
    await dovecot.append(mailbox, mail(customer, "Waiting", "Read me", message_id=f"{uid()}@x"))
    with structlog.testing.capture_logs() as logs:
        async with running(settings) as svc:
            core = svc.core
            async with core.bus.unit_of_work():
                row = await core.outbox.enqueue(
                    OutboundMessage(Channel.EMAIL, customer, "Not over an untrusted link"))
            reader = svc.runtime.reader
            await wait_until(lambda: _async(reader.tls_failures >= 1), what="an IMAP attempt")
            await wait_until(lambda: _retried(row.id), what="an SMTP attempt")
            health = svc.runtime.health()
            assert health.state == "down"
            assert "IMAP" in health.detail and "SMTP" in health.detail
            assert health.detail.count("not trusted") == 2
            assert "tls_ca_file" in health.detail
            assert reader.sessions == 0  # never logged in: the password was not sent
    assert svc.inbox.events == []
    assert await Message.filter(text="Read me").count() == 0
    assert smtp.to(customer) == []
    queued = await Outbox.get(id=row.id)
    assert queued.state is OutboxState.QUEUED and "tls_ca_file" in (queued.last_error or "")
    events = {e["event"] for e in logs}
    assert {"email.imap_tls_failed", "email.smtp_tls_failed"} <= events


def test_tls_ca_file_must_exist(tmp_path: Any) -> None:
    values = {"imap_host": "imap.example.com", "imap_username": "a@example.com",
              "smtp_host": "smtp.example.com", "from_address": "a@example.com",
              "tls_ca_file": str(tmp_path / "missing.pem")}
    with pytest.raises(ConfigError, match=r"\[email\] tls_ca_file: no such file"):
        make_settings("sqlite://:memory:", email=values)


async def _retried(outbox_id: int) -> bool:
    row = await Outbox.get(id=outbox_id)
    return row.state is OutboxState.QUEUED and row.attempts >= 1 and bool(row.last_error)


async def _async(value: bool) -> bool:
    return value
