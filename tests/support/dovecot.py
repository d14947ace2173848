"""A real Dovecot IMAP server for the test run, in a temporary directory, on a free port.

Tests are isolated by mailbox user: `server.add_user()` gives each test a fresh, empty mailbox.
Mail is put in with IMAP APPEND (`append()`), as a mail server delivering it would.
Given a certificate, it also speaks TLS: IMAPS on `ssl_port` and STARTTLS on the plain port
(plain logins stay allowed there, for the tests that use no TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from aioimaplib import IMAP4

from tests.support import procs

UID = 65534  # nobody: Dovecot refuses to keep mail as root
USERS = 200  # mailboxes made at start, one per test


def _tls_config(tls: tuple[str, str] | None) -> str:
    if tls is None:
        return "ssl = no"
    cert, key = tls
    return f"""ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2"""


def _config(root: str, port: int, ssl_port: int = 0,
            tls: tuple[str, str] | None = None) -> str:
    as_root = os.geteuid() == 0
    user = os.environ.get("USER") or "root"
    unprivileged = "" if as_root else f"""
default_internal_user = {user}
default_internal_group = {user}
default_login_user = {user}
service imap-login {{
  chroot =
}}
"""
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
{_tls_config(tls)}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = {UID if as_root else os.getuid()}
mail_location = maildir:{root}/mail/%u
# IDLE learns of new mail by inotify; when the user's inotify instances run out (128 by default,
# shared by both test passes' servers and Chromium) Dovecot falls back to looking every 30 s,
# longer than a test waits. Look every second then, as a busy real server may be set to.
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  args = {root}/users
}}
userdb {{
  driver = passwd-file
  args = {root}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ssl_port if tls else 0}
  }}
}}
# No auth penalty: after a test of a wrong password it would slow every login from 127.0.0.1
# in the next tests by seconds (the reader's own backoff is what those tests check).
service anvil {{
  {"" if as_root else "chroot ="}
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{unprivileged}
"""


@dataclass
class Dovecot:
    root: str
    port: int
    ssl_port: int | None = None  # IMAPS, when started with a certificate
    proc: subprocess.Popen[bytes] | None = None
    users: dict[str, str] = field(default_factory=dict)
    _unused: list[str] = field(default_factory=list)

    @property
    def conf(self) -> str:
        return os.path.join(self.root, "dovecot.conf")

    @property
    def log_path(self) -> str:
        return os.path.join(self.root, "dovecot.log")

    def start(self) -> None:
        binary = procs.require_binary("dovecot", "dovecot-imapd")
        self.proc = procs.start([binary, "-F", "-c", self.conf], log_path=self.log_path,
                                own_group=True)
        procs.wait_port(self.port, self.proc, log_path=self.log_path)
        if self.ssl_port:
            procs.wait_port(self.ssl_port, self.proc, log_path=self.log_path)

    def stop(self) -> None:
        """Stop the server and every process it started (imap processes holding clients
        would otherwise outlive the master for seconds). The whole process group: an imap
        process spawned for a client that reconnected during the shutdown is in it too, where
        a list of children taken beforehand would miss it and leave a session that never
        tells of new mail."""
        if self.proc is not None:
            group = self.proc.pid
            procs.stop(self.proc, signal.SIGTERM)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    async def stop_async(self) -> None:
        """Stop without blocking the test's loop (the service's client keeps running)."""
        await asyncio.to_thread(self.stop)

    async def start_async(self) -> None:
        await asyncio.to_thread(self.start)

    def add_user(self) -> str:
        """A mailbox user nobody used yet (a fresh, empty INBOX).

        The users are written before the server starts: Dovecot re-reads its passwd-file at most
        once a second, so a user added during the run could be refused for a moment.
        """
        return self._unused.pop()

    def write_users(self, count: int) -> None:
        for _ in range(count):
            name = f"u{uuid.uuid4().hex[:10]}@example.com"
            self.users[name] = "secret"
            self._unused.append(name)
        uid = UID if os.geteuid() == 0 else os.getuid()
        lines = [f"{u}:{{PLAIN}}{p}:{uid}:{uid}::{self.root}/home/{u}::"
                 for u, p in self.users.items()]
        tmp = os.path.join(self.root, "users.tmp")
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, os.path.join(self.root, "users"))

    async def client(self, user: str) -> IMAP4:
        # Right after a (re)start Dovecot may answer before its auth process is ready
        # ("[UNAVAILABLE] Temporary authentication failure"): try again briefly.
        for _ in range(40):
            c = IMAP4(host="127.0.0.1", port=self.port, timeout=10)
            await c.wait_hello_from_server()
            response = await c.login(user, self.users[user])
            if response.result == "OK":
                return c
            c.protocol.transport.close()
            if b"UNAVAILABLE" not in b" ".join(bytes(x) for x in response.lines):
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"IMAP login of {user} failed: {response}")

    async def append(self, user: str, raw: bytes, folder: str = "INBOX",
                     date: datetime | None = None) -> int:
        """Deliver one mail (with that internal date, e.g. an old one); returns its UID."""
        c = await self.client(user)
        try:
            response = await c.append(raw, mailbox=folder, date=date)
            assert response.result == "OK", response
            text = b" ".join(bytes(x) for x in response.lines).decode()
            return int(text.split("APPENDUID", 1)[1].split()[1].rstrip("]"))
        finally:
            await c.logout()

    async def recreate_folder(self, user: str, folder: str) -> None:
        """Delete and create a folder again: the server gives it a new UIDVALIDITY."""
        c = await self.client(user)
        try:
            await c.delete(folder)
            response = await c.create(folder)
            assert response.result == "OK", response
        finally:
            await c.logout()

    def logins(self, user: str) -> list[str]:
        """The server's log lines of the user's successful logins (", TLS," marks encrypted
        ones)."""
        with open(self.log_path, errors="replace") as f:
            return [line for line in f if "Login: user=<" + user + ">" in line]

    async def kick(self, user: str) -> None:
        """Drop the user's connections (the server says BYE)."""
        doveadm = procs.require_binary("doveadm", "dovecot-core")
        await asyncio.to_thread(subprocess.run, [doveadm, "-c", self.conf, "kick", user],
                                check=True, capture_output=True)


def start_dovecot(tls: tuple[str, str] | None = None) -> Dovecot:
    """Dovecot on a free port; with `tls` (certificate and key PEM paths) also IMAPS and
    STARTTLS."""
    root = tempfile.mkdtemp(prefix="crm-dovecot-")
    os.chmod(root, 0o755)
    for sub in ("run", "state", "mail", "home"):
        os.makedirs(os.path.join(root, sub))
        if os.geteuid() == 0:
            shutil.chown(os.path.join(root, sub), UID, UID) if sub in ("mail", "home") else None
    port = procs.free_port()
    ssl_port = None
    while tls and ssl_port in (None, port):
        ssl_port = procs.free_port()
    server = Dovecot(root=root, port=port, ssl_port=ssl_port)
    with open(server.conf, "w") as f:
        f.write(_config(root, server.port, server.ssl_port or 0, tls))
    server.write_users(USERS)
    server.start()
    return server


async def wait_until(check: object, timeout: float = 20, what: str = "condition") -> None:
    """Await an async predicate with short steps (for state only observable by polling)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()  # type: ignore[operator]
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout}s")
        await asyncio.sleep(0.05)
