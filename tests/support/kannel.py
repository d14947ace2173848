"""A real Kannel (bearerbox + smsbox from Debian) for the test run, with the test as its SMSC.

With `smsc = fake`, bearerbox listens on the SMSC port and whoever connects plays the mobile
network over the fake-SMSC line protocol (Kannel 1.4.5): one message a line, `FROM TO TYPE
PAYLOAD`. `FakeSmsc` is that: it injects inbound SMS and collects what Kannel sends out, joining
concatenated parts by their UDH. Kannel's sms-service forwards inbound SMS to the CRM's HTTP port
(fixed when Kannel starts, so the CRM under test listens on `crm_port`).

A second fake SMSC (`post_smsc_port`, smsc-id "fakepost") feeds a post-url sms-service instead:
what arrives there reaches the CRM as Kannel's post-url sends it (the text as the body, the
sender in X-Kannel-From because of send-sender, the receiver and time in X-Kannel-To and
X-Kannel-Time; only the token and id=%I in the URL). `allowed-smsc-id` keeps our outbound SMS
off that line.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

from tests.support import procs

USERNAME, PASSWORD = "crm", "kannel-test-password"

CONFIG = """\
group = core
admin-port = {admin_port}
admin-password = admin-test
smsbox-port = {smsbox_port}
box-allow-ip = "127.0.0.1"
log-file = "{root}/bearerbox.log"
log-level = 1
dlr-storage = internal

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {sendsms_port}
log-file = "{root}/smsbox.log"
log-level = 1
mo-recode = true
http-request-retry = 5
http-queue-delay = 1

group = sendsms-user
username = {username}
password = {password}
max-messages = 10
concatenation = true

group = smsc
smsc = fake
smsc-id = fake
port = {smsc_port}
connect-allow-ip = 127.0.0.1

group = smsc
smsc = fake
smsc-id = fakepost
allowed-smsc-id = fakepost
port = {post_smsc_port}
connect-allow-ip = 127.0.0.1

group = sms-service
keyword-regex = .*
accepted-smsc = fakepost
catch-all = true
max-messages = 0
send-sender = true
post-url = "http://127.0.0.1:{crm_port}/sms/kannel/inbound?token={token}&id=%I"

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "http://127.0.0.1:{crm_port}/sms/kannel/inbound?token={token}&from=%p&to=%P&text=%a&id=%I&time=%t"
"""


# The [sms] inbound_token the tests' Kannel puts in its callback URLs.
INBOUND_TOKEN = "sms-inbound-token-0123456789"


@dataclass
class KannelServer:
    root: str
    sendsms_port: int
    smsc_port: int
    post_smsc_port: int
    crm_port: int
    token: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            procs.stop(proc, signal.SIGTERM, timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)


def start_kannel(crm_port: int, token: str) -> KannelServer:
    bearerbox = procs.require_binary("/usr/sbin/bearerbox", "kannel")
    smsbox = procs.require_binary("/usr/sbin/smsbox", "kannel")
    root = tempfile.mkdtemp(prefix="crm-kannel-")
    ports = {name: procs.free_port() for name in ("admin", "smsbox", "sendsms", "smsc",
                                                   "post_smsc")}
    conf = Path(root) / "kannel.conf"
    conf.write_text(CONFIG.format(
        root=root, admin_port=ports["admin"], smsbox_port=ports["smsbox"],
        sendsms_port=ports["sendsms"], smsc_port=ports["smsc"],
        post_smsc_port=ports["post_smsc"], crm_port=crm_port,
        token=token, username=USERNAME, password=PASSWORD))
    server = KannelServer(root, ports["sendsms"], ports["smsc"], ports["post_smsc"], crm_port,
                          token)
    try:
        log = f"{root}/bearerbox.out"
        server.procs.append(procs.start([bearerbox, str(conf)], log_path=log))
        procs.wait_port(ports["smsbox"], server.procs[0], log_path=log)
        procs.wait_port(ports["smsc"], server.procs[0], log_path=log)
        procs.wait_port(ports["post_smsc"], server.procs[0], log_path=log)
        log = f"{root}/smsbox.out"
        server.procs.append(procs.start([smsbox, str(conf)], log_path=log))
        procs.wait_port(ports["sendsms"], server.procs[1], log_path=log)
    except BaseException:
        server.stop()
        raise
    return server


# The start of a line of Kannel's fake SMSC protocol: FROM TO TYPE …
_LINE = re.compile(rb"^\S+ \S+ (text|ucs-2|data|udh) ")


@dataclass
class SmscMessage:
    """One SMS as the network got it from Kannel (parts already joined)."""

    sender: str
    receiver: str
    kind: str  # text, ucs-2, data, or udh (concatenated: the coding is not on the line)
    payload: bytes
    parts: int = 1

    @property
    def text(self) -> str:
        """The text, for single-part `text` and `ucs-2` lines."""
        if self.kind == "ucs-2":
            return self.payload.decode("utf-16-be")
        return self.payload.decode("utf-8")

    def decode(self, ucs2: bool) -> str:
        return self.payload.decode("utf-16-be" if ucs2 else "utf-8")


class FakeSmsc:
    """The mobile network, as far as Kannel knows: a TCP client of bearerbox's fake SMSC port."""

    def __init__(self) -> None:
        self.received: list[SmscMessage] = []
        self._parts: dict[tuple[str, str, int], dict[int, bytes]] = {}
        self._changed = asyncio.Condition()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self, port: int) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", port)
        self._task = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    async def deliver(self, sender: str, receiver: str, text: str) -> None:
        """An SMS from a phone to us: raw UTF-8 for plain text, UCS-2 otherwise."""
        assert self._writer is not None
        if text.isascii() and "\n" not in text:
            line = f"{sender} {receiver} text {text}\n"
        else:
            line = f"{sender} {receiver} ucs2 {quote(text.encode('utf-16-be'))}\n"
        self._writer.write(line.encode())
        await self._writer.drain()

    async def wait(self, receiver: str, count: int = 1, timeout: float = 20) -> list[SmscMessage]:
        """The first `count` messages Kannel sent to `receiver`."""
        def mine() -> list[SmscMessage]:
            return [m for m in self.received if m.receiver == receiver]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(mine()) >= count),
                                   timeout)
        return mine()[:count]

    async def _read(self) -> None:
        assert self._reader is not None
        while line := await self._reader.readline():
            raw = line.rstrip(b"\r\n")
            last = self.received[-1] if self.received else None
            if last is not None and last.kind == "text" and not _LINE.match(raw):
                # A GSM text is written raw, to the end of the line: a newline in it goes to
                # the SMSC as it is, and what follows is the same message.
                self.received[-1] = SmscMessage(last.sender, last.receiver, last.kind,
                                                last.payload + b"\n" + raw, last.parts)
                async with self._changed:
                    self._changed.notify_all()
                continue
            message = self._parse(raw)
            if message is not None:
                async with self._changed:
                    self.received.append(message)
                    self._changed.notify_all()

    @staticmethod
    def _bytes(encoded: str) -> bytes:
        """Kannel's octstr_url_encode: %XX escapes, and '+' for a space byte."""
        return unquote_to_bytes(encoded.replace("+", "%20"))

    def _parse(self, line: bytes) -> SmscMessage | None:
        sender, receiver, kind, rest = line.decode("utf-8", "replace").split(" ", 3)
        if kind == "text":
            return SmscMessage(sender, receiver, kind, rest.encode())
        if kind in ("ucs-2", "data"):
            return SmscMessage(sender, receiver, kind, self._bytes(rest))
        if kind != "udh":
            raise ValueError(f"unexpected line from Kannel: {line!r}")
        udh_raw, _, data = rest.partition(" data ")
        udh = self._bytes(udh_raw)
        # 05 00 03 REF TOTAL SEQ: concatenated SMS, 8-bit reference
        ref, total, seq = udh[3], udh[4], udh[5]
        parts = self._parts.setdefault((sender, receiver, ref), {})
        parts[seq] = self._bytes(data)
        if len(parts) < total:
            return None
        del self._parts[(sender, receiver, ref)]
        payload = b"".join(parts[i] for i in sorted(parts))
        return SmscMessage(sender, receiver, "udh", payload, parts=total)
