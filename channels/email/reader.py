"""The mailbox reader: IMAP IDLE for new mail within seconds, a periodic re-check as a safety
net, reconnect with backoff after any drop, and a checkpoint stored only after the commit.

The checkpoint (UIDVALIDITY and the last UID handled) lives in the Cursor table. A restart reads
on from it; a crash before the checkpoint means the same mail is fetched again and the timeline's
dedupe (by Message-ID) drops the copy. When the server changes UIDVALIDITY the UIDs mean nothing
any more: the reader re-reads the recent mail and lets dedupe drop what it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from aioimaplib import IMAP4, STOP_WAIT_SERVER_PUSH, Command

from channels.email.tls import client_context, describe, tls_error
from crm.clock import Clock, utcnow
from crm.config import EmailSettings
from crm.leader import Leadership
from crm.models import Cursor
from crm.ports import ChannelHealth

log = structlog.get_logger(__name__)

Handler = Callable[[bytes, int], Awaitable[None]]
_FETCH_UID = re.compile(rb"UID (\d+)")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class ReaderTuning:
    """Timings of the reader; the defaults suit production, tests shorten them."""

    retry_base: float = 1.0  # first reconnect delay after a drop (doubles, with jitter)
    retry_max: float = 120.0
    auth_retry_base: float = 30.0  # a refused login: wait longer, never hammer the server
    auth_retry_max: float = 900.0
    command_timeout: float = 30.0
    fetch_batch: int = 25
    standby_seconds: float = 15.0  # PostgreSQL: how often a standby tries to take over
    attempts_per_mail: int = 3  # a mail that fails this often is skipped, not retried forever
    resync_days: int = 2  # on a UIDVALIDITY change: re-read mail this much older than the
    #                       last checkpoint (dedupe drops what we have)


class LoginFailed(Exception):
    """The server refused our username or password."""


class ConnectionDropped(Exception):
    """The server said BYE or closed the connection."""


class TlsUnavailable(Exception):
    """The server cannot give us the TLS the settings ask for (a setup problem, not a drop)."""


def retry_delay(failures: int, base: float, cap: float, rnd: random.Random | None = None) -> float:
    """Exponential backoff with jitter: base, 2·base, 4·base … up to cap (±25%)."""
    exp = min(cap, base * 2 ** max(0, failures - 1))
    return float(exp * (0.75 + (rnd or random).random() / 2))


def imap_date(moment: datetime) -> str:
    """IMAP's date format for SEARCH SINCE, independent of the locale."""
    return f"{moment.day}-{_MONTHS[moment.month - 1]}-{moment.year}"


def parse_fetch(lines: list[bytes | bytearray]) -> list[tuple[int, bytes]]:
    """(uid, raw mail) pairs from an aioimaplib FETCH response."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if isinstance(line, bytes) and b"FETCH" in line and line.rstrip().endswith(b"}") \
                and i + 1 < len(lines) and isinstance(lines[i + 1], bytearray):
            match = _FETCH_UID.search(line)
            if match is None and i + 2 < len(lines):
                match = _FETCH_UID.search(bytes(lines[i + 2]))
            if match is not None:
                out.append((int(match.group(1)), bytes(lines[i + 1])))
            i += 2
            continue
        i += 1
    return out


def _select_value(lines: list[bytes], key: bytes) -> int | None:
    for line in lines:
        match = re.search(rb"\[" + key + rb" (\d+)\]", line)
        if match:
            return int(match.group(1))
    return None


class ImapReader:
    """Reads one folder for ever; `start()` runs it in a task, `stop()` ends it cleanly."""

    def __init__(self, settings: EmailSettings, handler: Handler, *,
                 tuning: ReaderTuning | None = None, clock: Clock = utcnow,
                 leadership: Leadership | None = None) -> None:
        self.settings = settings
        # With several processes on PostgreSQL, one reads the mailbox; the others stand by.
        self.leadership = leadership
        self.handler = handler
        self.tuning = tuning or ReaderTuning()
        self.clock = clock
        self.cursor_name = (f"email:imap:{settings.imap_username}@{settings.imap_host}:"
                            f"{settings.imap_port}/{settings.imap_folder}")
        self._state: ChannelHealth = ChannelHealth("starting", "connecting to the mailbox")
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sessions = 0  # successful logins (tests read it)
        self.login_failures = 0
        self.idle_ready = asyncio.Event()  # set each time IDLE is (re)entered; tests await it
        self._checkpoint: tuple[int, int] | None = None
        self._failures: dict[int, int] = {}  # uid -> failed attempts to store it
        self._announced = False  # new mail announced in a command's answer (_note_announced)
        # Built once: a bad tls_ca_file is an error at start, not at every reconnect.
        self._tls = client_context(settings) if settings.imap_security != "none" else None
        self.tls_failures = 0

    # lifecycle ---------------------------------------------------------------------------

    def health(self) -> ChannelHealth:
        return self._state

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="email-imap-reader")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.tuning.command_timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        s = self.settings
        where = f"{s.imap_host}:{s.imap_port}"
        while not self._stopping.is_set():
            if self.leadership is not None and not await self.leadership.ensure():
                self._state = ChannelHealth("up", "standing by: another process reads the "
                                                  "mailbox")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.tuning.standby_seconds)
                continue
            try:
                await self._session()
                failures = 0
                continue
            except LoginFailed as e:
                self.login_failures += 1
                failures += 1
                delay = retry_delay(failures, self.tuning.auth_retry_base,
                                    self.tuning.auth_retry_max)
                detail = (f"IMAP login as {s.imap_username!r} on {where} failed: {e}. Check "
                          f"imap_username and imap_password; retrying in {delay:.1f} s")
                log.error("email.imap_login_failed", detail=detail)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any drop: network, timeout, BYE, protocol surprise
                tls = tls_error(e)
                if tls is not None or isinstance(e, TlsUnavailable):
                    # An untrusted certificate does not fix itself in a second: wait like
                    # after a refused login, and never fall back to an unverified connection.
                    self.tls_failures += 1
                    failures += 1
                    delay = retry_delay(failures, self.tuning.auth_retry_base,
                                        self.tuning.auth_retry_max)
                    reason = describe(tls, "the server") if tls else str(e)
                    detail = f"IMAP {where}: {reason}; retrying in {delay:.1f} s"
                    log.error("email.imap_tls_failed", detail=detail)
                else:
                    failures += 1
                    delay = retry_delay(failures, self.tuning.retry_base, self.tuning.retry_max)
                    reason = str(e) or type(e).__name__
                    detail = (f"IMAP {where}: {reason}; reconnecting in {delay:.1f} s")
                    log.warning("email.imap_disconnected", error=reason,
                                error_type=type(e).__name__, retry_in=round(delay, 2))
            self._state = ChannelHealth("down", detail)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        self._state = ChannelHealth("off", "stopped")
        if self.leadership is not None:
            await self.leadership.close()

    # one connection ----------------------------------------------------------------------

    async def _session(self) -> None:
        s = self.settings
        self._announced = False  # a new connection catches up from the checkpoint anyway
        lost = asyncio.Event()
        context = self._tls if s.imap_security == "ssl" else None
        client = IMAP4(host=s.imap_host, port=s.imap_port, timeout=self.tuning.command_timeout,
                       conn_lost_cb=lambda _exc: lost.set(), ssl_context=context)
        try:
            await client.wait_hello_from_server()
            if s.imap_security == "starttls":
                await self._starttls(client)
            response = await client.login(s.imap_username, s.imap_password)
            if response.result != "OK":
                reason = _text(response.lines) or "the server refused the login"
                if "[UNAVAILABLE]" in reason:  # the server's auth backend, not our password
                    raise RuntimeError(f"login unavailable: {reason}")
                raise LoginFailed(reason)
            self.sessions += 1
            response = await client.select(_quote(s.imap_folder))
            if response.result != "OK":
                raise RuntimeError(f"cannot open folder {s.imap_folder!r}: "
                                   f"{_text(response.lines)}")
            validity = _select_value(response.lines, b"UIDVALIDITY")
            if validity is None:
                raise RuntimeError("the server gave no UIDVALIDITY for the folder")
            uidnext = _select_value(response.lines, b"UIDNEXT")
            await self._catch_up(client, validity, uidnext)
            self._state = ChannelHealth("up", f"reading {s.imap_folder} on {s.imap_host}")
            log.info("email.imap_ready", folder=s.imap_folder, uidvalidity=validity,
                     idle=client.has_capability("IDLE"))
            while not self._stopping.is_set():
                if lost.is_set():
                    raise ConnectionDropped("the server closed the connection")
                if self._announced:
                    # New mail was announced in the answer to one of our own commands (a
                    # SEARCH, a FETCH): IDLE would not tell of it again. Fetch it now.
                    self._announced = False
                elif client.has_capability("IDLE"):
                    await self._idle(client, lost)
                else:
                    await self._wait_or_stop(self.settings.poll_interval, lost)
                    if not lost.is_set():
                        await client.noop()
                if self._stopping.is_set() or lost.is_set():
                    continue
                await self._fetch_new(client, validity)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.logout(), 2)
        finally:
            self.idle_ready.clear()
            with contextlib.suppress(Exception):
                transport = client.protocol.transport
                if transport is not None:
                    transport.close()

    async def _starttls(self, client: IMAP4) -> None:
        """Upgrade the plain connection before anything secret is sent (RFC 3501 6.2.1)."""
        assert self._tls is not None
        proto = client.protocol
        if not client.has_capability("STARTTLS"):
            raise TlsUnavailable("the server does not offer STARTTLS; use imap_security = "
                                 "\"ssl\" with its IMAPS port, or fix the server")
        response = await asyncio.wait_for(
            proto.execute(Command("STARTTLS", proto.new_tag(), loop=proto.loop)),
            self.tuning.command_timeout)
        if response.result != "OK":
            raise TlsUnavailable(f"the server refused STARTTLS: {_text(response.lines)}")
        # Whatever came in plain text after the server's OK may be injected by someone in the
        # middle: drop it, and forget the capabilities learnt before TLS (RFC 3501 6.2.1).
        proto.incomplete_line = b""
        proto.current_command = None
        proto.capabilities = set()
        transport = await asyncio.get_running_loop().start_tls(
            proto.transport, proto, self._tls, server_hostname=self.settings.imap_host,
            ssl_handshake_timeout=self.tuning.command_timeout)
        if transport is None:
            raise ConnectionDropped("the connection closed during the TLS handshake")
        proto.transport = transport
        await asyncio.wait_for(proto.capability(), self.tuning.command_timeout)

    async def _idle(self, client: IMAP4, lost: asyncio.Event) -> None:
        """Wait in IDLE until the server reports new mail, the re-check is due, or a stop."""
        idle = await client.idle_start(timeout=min(self.settings.poll_interval, 29 * 60))
        self.idle_ready.set()
        try:
            while True:
                push_task = asyncio.ensure_future(client.wait_server_push(timeout=29 * 60))
                stop_task = asyncio.ensure_future(self._stopping.wait())
                lost_task = asyncio.ensure_future(lost.wait())
                done, pending = await asyncio.wait({push_task, stop_task, lost_task},
                                                   return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                if push_task not in done:
                    if lost_task in done:
                        raise ConnectionDropped("connection lost during IDLE")
                    return  # stopping
                push = push_task.result()
                if push == STOP_WAIT_SERVER_PUSH:
                    return  # the periodic re-check
                lines = push if isinstance(push, list) else [push]
                if any(bytes(line).startswith(b"BYE") for line in lines):
                    raise ConnectionDropped(_text(lines) or "BYE")
                if any(bytes(line).endswith(b"EXISTS") for line in lines):
                    return
        finally:
            self.idle_ready.clear()
            if not lost.is_set() and client.has_pending_idle():
                client.idle_done()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(idle, self.tuning.command_timeout)
            else:
                idle.cancel()

    async def _wait_or_stop(self, seconds: float, lost: asyncio.Event) -> None:
        stop_task = asyncio.ensure_future(self._stopping.wait())
        lost_task = asyncio.ensure_future(lost.wait())
        _, pending = await asyncio.wait({stop_task, lost_task}, timeout=seconds,
                                        return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    # checkpoint and fetching ---------------------------------------------------------------

    async def _load(self) -> dict[str, object] | None:
        row = await Cursor.filter(name=self.cursor_name).first()
        return dict(row.value) if row is not None else None

    async def _save(self, validity: int, last_uid: int) -> None:
        value = {"uidvalidity": validity, "last_uid": last_uid,
                 "at": self.clock().isoformat()}
        updated = await Cursor.filter(name=self.cursor_name).update(value=value)
        if not updated:
            await Cursor.create(name=self.cursor_name, value=value)
        self._checkpoint = (validity, last_uid)

    async def _catch_up(self, client: IMAP4, validity: int, uidnext: int | None) -> None:
        cursor = await self._load()
        now = self.clock()
        if cursor is None:
            start_uid = (uidnext or 1) - 1 if uidnext is not None else await self._max_uid(client)
            if self.settings.import_days > 0:
                since = now - timedelta(days=self.settings.import_days)
                uids = await self._search(client, "SINCE", imap_date(since))
                log.info("email.imap_first_import", days=self.settings.import_days,
                         messages=len(uids))
                await self._fetch(client, validity, uids, 0)
            else:
                log.info("email.imap_first_start", note="only mail arriving from now on is read "
                         "(set import_days to import older mail)")
            await self._save(validity, max(start_uid, 0))
            return
        if cursor.get("uidvalidity") != validity:
            at = _parse_at(cursor.get("at")) or now
            since = at - timedelta(days=self.tuning.resync_days)
            uids = await self._search(client, "SINCE", imap_date(since))
            log.warning("email.imap_uidvalidity_changed", old=cursor.get("uidvalidity"),
                        new=validity, rereading=len(uids))
            await self._fetch(client, validity, uids, 0)
            # Not just the newest re-read mail: on a quiet mailbox that would be 0, and the next
            # fetch would take the whole mailbox as new.
            await self._save(validity, max(max(uids, default=0), (uidnext or 1) - 1))
            return
        await self._fetch_new(client, validity)

    async def _fetch_new(self, client: IMAP4, validity: int) -> None:
        last = self._checkpoint[1] if self._checkpoint and self._checkpoint[0] == validity \
            else None
        if last is None:
            cursor = await self._load() or {}
            last = int(str(cursor.get("last_uid", 0)))
        uids = [u for u in await self._search(client, "UID", f"{last + 1}:*") if u > last]
        await self._fetch(client, validity, uids, last)

    async def _fetch(self, client: IMAP4, validity: int, uids: list[int], last: int) -> None:
        uids = sorted(set(uids))
        batch = self.tuning.fetch_batch
        for start in range(0, len(uids), batch):
            chunk = uids[start:start + batch]
            response = await client.uid("fetch", ",".join(map(str, chunk)), "(UID BODY.PEEK[])")
            if response.result != "OK":
                raise RuntimeError(f"FETCH failed: {_text(response.lines)}")
            self._note_announced(response.lines)
            fetched = sorted(parse_fetch(response.lines))
            missing = sorted(set(chunk) - {uid for uid, _ in fetched})
            if missing:  # expunged meanwhile, or a response we could not read: say so
                log.warning("email.imap_uids_not_returned", uids=missing[:50],
                            count=len(missing))
            for uid, raw in fetched:
                try:
                    await self.handler(raw, uid)  # returns after the commit
                except Exception as e:
                    if not self._give_up_on(uid, e):
                        raise  # reconnect and try again: the database may have been away
                else:
                    self._failures.pop(uid, None)
            last = max(last, chunk[-1])
            await self._save(validity, last)

    def _note_announced(self, lines: list[bytes | bytearray]) -> None:
        """Remember an untagged `* N EXISTS` in a command's answer: mail that arrived while we
        searched or fetched, which the next IDLE would not announce again."""
        if any(isinstance(line, bytes) and line.endswith(b" EXISTS") for line in lines):
            self._announced = True

    def _give_up_on(self, uid: int, error: Exception) -> bool:
        """After a few failures of the same mail, skip it rather than block the mailbox."""
        failures = self._failures[uid] = self._failures.get(uid, 0) + 1
        if failures < self.tuning.attempts_per_mail:
            return False
        self._failures.pop(uid, None)
        log.error("email.mail_skipped", uid=uid, attempts=failures,
                  error=f"{type(error).__name__}: {error}",
                  hint="this mail is not in the CRM; it stays in the mailbox for a person")
        return True

    async def _search(self, client: IMAP4, *criteria: str) -> list[int]:
        response = await client.uid_search(*criteria, charset=None)
        if response.result != "OK":
            raise RuntimeError(f"SEARCH failed: {_text(response.lines)}")
        self._note_announced(response.lines)
        numbers: list[int] = []
        for line in response.lines[:-1] if len(response.lines) > 1 else response.lines:
            text = bytes(line).decode("ascii", "replace")
            if text.upper().startswith("SEARCH"):
                text = text[6:]
            numbers += [int(t) for t in text.split() if t.isdigit()]
        return numbers

    async def _max_uid(self, client: IMAP4) -> int:
        return max(await self._search(client, "ALL"), default=0)


def _quote(folder: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.\-/]+", folder):
        return folder
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(lines: list[bytes]) -> str:
    return " ".join(bytes(line).decode("utf-8", "replace") for line in lines).strip()


def _parse_at(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None


