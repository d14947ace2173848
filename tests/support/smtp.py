"""A real SMTP server for tests (aiosmtpd, in its own thread), recording what it receives.

Its mail can be awaited from the test's event loop; it can refuse recipients, be stopped and
started again on the same port (SMTP down, then back), and count connections.
With a TLS context it speaks implicit TLS (`security="ssl"`) or requires STARTTLS before
anything else (`security="starttls"`); each received mail records whether it came over TLS and
after a login.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.support import procs

# The login the tests' SMTP servers take.
TEST_LOGIN = ("crm", "smtp-secret")


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes
    tls: bool = False  # the connection was encrypted (implicit TLS or after STARTTLS)
    authenticated: bool = False

    @property
    def mail(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]


@dataclass
class _Handler:
    server: SmtpServer

    async def handle_RCPT(self, smtp: SMTPServer, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        reply = self.server.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTPServer, session: Session,
                          envelope: Envelope) -> str:
        transport = smtp.transport
        item = Received(str(envelope.mail_from), list(envelope.rcpt_tos),
                        bytes(envelope.original_content or envelope.content or b""),
                        tls=transport is not None and
                        transport.get_extra_info("ssl_object") is not None,
                        authenticated=bool(session.authenticated))
        self.server._deliver(item)
        return "250 Message accepted"


class _Authenticator:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    def __call__(self, smtp: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self.server.credentials == (
                auth_data.login.decode(), auth_data.password.decode()):
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@dataclass
class SmtpServer:
    port: int
    credentials: tuple[str, str] | None = None
    security: Literal["none", "ssl", "starttls"] = "none"
    tls_context: ssl.SSLContext | None = None  # the server's certificate, for ssl/starttls
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> "550 ..." reply
    on_message: Callable[[Received], None] | None = None  # runs on the test's loop
    connections: int = 0
    _controller: Controller | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _changed: asyncio.Condition | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tasks: set[asyncio.Future[None]] = field(default_factory=set)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._changed = asyncio.Condition()

    def start(self) -> None:
        server = self

        class _Counting(SMTPServer):
            def connection_made(self, transport: Any) -> None:
                with server._lock:
                    server.connections += 1
                super().connection_made(transport)

        kwargs: dict[str, Any] = {}
        if self.credentials:
            # aiosmtpd 1.4.6 only counts STARTTLS as TLS for auth_require_tls: on an implicit
            # TLS connection it would refuse AUTH, so it is enforced only with STARTTLS.
            kwargs = {"authenticator": _Authenticator(self),
                      "auth_require_tls": self.security == "starttls"}
        if self.security == "starttls":
            kwargs |= {"tls_context": self.tls_context, "require_starttls": True}
        handler = _Handler(self)

        class _Controller(Controller):
            def factory(self) -> SMTPServer:
                return _Counting(handler, **kwargs)

        self._controller = _Controller(
            handler, hostname="127.0.0.1", port=self.port,
            ssl_context=self.tls_context if self.security == "ssl" else None)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def _deliver(self, item: Received) -> None:  # called in the server's thread
        with self._lock:
            self.received.append(item)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._notify, item)

    def _notify(self, item: Received) -> None:
        if self.on_message is not None:
            self.on_message(item)
        task = asyncio.ensure_future(self._wake())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wake(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if address.lower() in
                    (a.lower() for a in r.recipients)]

    async def wait_total(self, count: int, timeout: float = 60) -> None:
        """Wait until `count` mails arrived in all."""
        assert self._changed is not None, "bind_loop() first"
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.received) >= count),
                                   timeout)

    async def wait_for(self, address: str, count: int = 1, timeout: float = 15) -> list[Received]:
        """Wait until `count` mails to `address` arrived; returns them."""
        assert self._changed is not None, "bind_loop() first"
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.to(address)) >= count), timeout)
        return self.to(address)


def start_smtp(credentials: tuple[str, str] | None = None,
               security: Literal["none", "ssl", "starttls"] = "none",
               tls_context: ssl.SSLContext | None = None) -> SmtpServer:
    if security != "none" and tls_context is None:
        raise ValueError(f"security={security!r} needs the server's tls_context")
    server = SmtpServer(port=procs.free_port(), credentials=credentials, security=security,
                        tls_context=tls_context)
    server.start()
    return server
