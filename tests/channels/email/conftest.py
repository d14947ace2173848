"""Fixtures of the email channel's tests: one Dovecot (plain, STARTTLS and IMAPS) and SMTP
servers (plain; implicit TLS and STARTTLS for the TLS tests) for the whole run, a fresh mailbox
user per test, and the whole service run in-process around the email channel."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from channels.email import build
from channels.email.reader import ReaderTuning
from channels.email.runtime import EmailRuntime
from crm.app import App, _telegram
from crm.config import Settings
from crm.events import MessageReceived
from tests.channels.email.certs import TlsFiles
from tests.conftest import make_settings
from tests.support.dovecot import Dovecot
from tests.support.smtp import TEST_LOGIN, SmtpServer, start_smtp

SAMPLES = Path(__file__).parent / "samples"
SUPPORT = "support@example.com"
SMTP_LOGIN = TEST_LOGIN
FAST = ReaderTuning(retry_base=0.05, retry_max=0.5, auth_retry_base=0.2, auth_retry_max=1.0,
                    command_timeout=5)








@pytest_asyncio.fixture(scope="session")
async def smtp_ssl(tls_files: TlsFiles) -> AsyncIterator[SmtpServer]:
    server = start_smtp(credentials=SMTP_LOGIN, security="ssl",
                        tls_context=tls_files.server_context())
    server.bind_loop(asyncio.get_running_loop())
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="session")
async def smtp_starttls(tls_files: TlsFiles) -> AsyncIterator[SmtpServer]:
    server = start_smtp(credentials=SMTP_LOGIN, security="starttls",
                        tls_context=tls_files.server_context())
    server.bind_loop(asyncio.get_running_loop())
    yield server
    server.stop()


@pytest.fixture
def mailbox(dovecot: Dovecot) -> str:
    return dovecot.add_user()


def email_settings(db: str, dovecot: Dovecot, smtp: SmtpServer, user: str, tmp: Path,
                   acknowledge: tuple[str, ...] = (), *,
                   sections: dict[str, dict[str, Any]] | None = None,
                   **overrides: Any) -> Settings:
    """The email channel's settings; the bot's acknowledgement is off unless a test asks for
    it, so tests count only the mail they cause. `sections`: more of the config (the
    managers' chat: `{"telegram": …}`)."""
    values: dict[str, Any] = {
        "imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_security": "none",
        "imap_username": user, "imap_password": dovecot.users[user],
        "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
        "smtp_username": SMTP_LOGIN[0], "smtp_password": SMTP_LOGIN[1],
        "from_address": SUPPORT, "from_name": "Example Support",
        "poll_interval": 60.0,
        "smtp_rate_per_second": 200.0,
    }
    values.update(overrides)
    return make_settings(db, email=values, bot={"acknowledge": list(acknowledge)},
                         **(sections or {}))


@pytest.fixture
def settings_for(db: str, dovecot: Dovecot, smtp: SmtpServer, mailbox: str,
                 tmp_path: Path) -> Any:
    return functools.partial(email_settings, db, dovecot, smtp, mailbox, tmp_path)


class Inbox:
    """Awaits messages entering the timeline (MessageReceived after commit)."""

    def __init__(self) -> None:
        self.events: list[MessageReceived] = []
        self.changed = asyncio.Condition()

    async def __call__(self, event: MessageReceived) -> None:
        async with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    async def wait(self, count: int, timeout: float = 15) -> list[MessageReceived]:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.events) >= count),
                                   timeout)
        return self.events


class Running:
    def __init__(self, app: App, inbox: Inbox) -> None:
        self.app = app
        self.inbox = inbox

    @property
    def runtime(self) -> EmailRuntime:
        runtime = self.app.channels[0]
        assert isinstance(runtime, EmailRuntime)
        return runtime

    @property
    def core(self) -> Any:
        return self.app.core

    async def idle(self, timeout: float = 15) -> None:
        """Wait until the reader sits in IDLE (its checkpoint exists, new mail is pushed)."""
        await asyncio.wait_for(self.runtime.reader.idle_ready.wait(), timeout)


@asynccontextmanager
async def running(settings: Settings, tuning: ReaderTuning = FAST) -> AsyncIterator[Running]:
    """The whole service in-process with the email channel, and the managers' chat when the
    settings have [telegram] (nothing else that needs I/O)."""
    inbox = Inbox()

    def email(core: Any, web_app: Any) -> Any:
        core.bus.subscribe(MessageReceived, inbox)
        return build(core, web_app, tuning=tuning)

    channels = [email, _telegram] if settings.telegram.enabled else [email]
    async with App(settings, builtin_channels=False, extra_channels=channels,
                   manage_database=False) as app:
        yield Running(app, inbox)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def mail(sender: str, subject: str, body: str, *, message_id: str | None = None,
         headers: dict[str, str] | None = None) -> bytes:
    lines = [f"From: {sender}", f"To: {SUPPORT}", f"Subject: {subject}",
             "Date: Tue, 14 Jan 2025 10:00:00 +0000"]
    if message_id:
        lines.append(f"Message-ID: <{message_id}>")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body, ""]
    return "\r\n".join(lines).encode()
