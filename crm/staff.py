"""Staff sign-in for the web console: passwords with a lockout, one-time links, sessions.

- A password sign-in counts failures per email and per client address ([console]
  sign_in_max_failures within sign_in_window_minutes); past the limit that email (or address)
  is locked out for sign_in_lockout_minutes, even with the right password.
- A manager on Telegram asks the bot for a link (`/web`): signed (crm/links.py, its own
  purpose), good for 10 minutes and once (the used token's hash is kept, unique).
- While the team has no admin, `crm run` logs a link that creates the first one.
- A session is a random token in an HttpOnly cookie; only its SHA-256 is stored, with the
  session's form (CSRF) token. It ends on sign-out, after session_idle_minutes unused, and
  after session_max_hours in any case.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from tortoise.exceptions import IntegrityError

from crm.clock import Clock, utcnow
from crm.config import ConsoleSettings
from crm.errors import Conflict, CrmError
from crm.events import EventBus
from crm.links import LinkTampered, Signer
from crm.managers import Managers
from crm.models import AuditLog, Manager, SignInLock, StaffSession, UsedLink
from crm.passwords import verify_password
from crm.types import Role

log = structlog.get_logger(__name__)

LINK_MINUTES = 10
SIGN_IN = "console-sign-in"
FIRST_ADMIN = "first-admin"
_IP_FACTOR = 4  # a client address may fail this many times more often than one email
_TOUCH = timedelta(seconds=60)  # last_seen_at is kept to the minute: no write per request


class SignInRefused(CrmError):
    """Wrong email or password (which one is not said)."""


class LockedOut(CrmError):
    def __init__(self, minutes: int) -> None:
        super().__init__(f"too many failed sign-ins: try again in {minutes} minute(s)")
        self.minutes = minutes


class LinkUsed(CrmError):
    """A one-time link that was used already."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session: who, and the token their forms must carry."""

    session_id: int
    manager: Manager
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Staff:
    def __init__(self, settings: ConsoleSettings, public_url: str, signer: Signer,
                 managers: Managers, bus: EventBus, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.public_url = public_url.rstrip("/")
        self.signer = signer
        self.managers = managers
        self.bus = bus
        self.clock = clock

    # Passwords ----------------------------------------------------------------------------

    async def sign_in(self, email: str, password: str, client: str) -> tuple[Manager, str]:
        """The manager and a new session token; SignInRefused or LockedOut otherwise."""
        email = email.strip().lower()[:320]
        keys = [f"email:{email}", f"ip:{client[:180]}"]
        now = self.clock()
        for lock in await SignInLock.filter(key__in=keys):
            if lock.locked_until is not None and lock.locked_until > now:
                raise LockedOut(max(1, math.ceil((lock.locked_until - now).total_seconds() / 60)))
        manager = await Manager.filter(email=email, active=True).first() if email else None
        ok = await verify_password(manager.password_hash if manager else None, password)
        if manager is None or not ok:
            await self._failed(keys, now)
            log.info("console.sign_in_failed", email=email, client=client)
            raise SignInRefused("wrong email or password")
        await SignInLock.filter(key=keys[0]).delete()
        token = await self.start(manager, how="password")
        return manager, token

    async def _failed(self, keys: list[str], now: datetime) -> None:
        window = timedelta(minutes=self.settings.sign_in_window_minutes)
        for key in keys:
            limit = self.settings.sign_in_max_failures * (1 if key.startswith("email:")
                                                          else _IP_FACTOR)
            lock = await SignInLock.filter(key=key).first()
            if lock is None:
                try:
                    lock = await SignInLock.create(key=key, failures=0, first_failure_at=now)
                except IntegrityError:  # another process counted the first one at once
                    lock = await SignInLock.get(key=key)
            if lock.first_failure_at is None or now - lock.first_failure_at > window:
                lock.failures, lock.first_failure_at = 0, now
            lock.failures += 1
            if lock.failures >= limit:
                lock.locked_until = now + timedelta(minutes=self.settings.sign_in_lockout_minutes)
                lock.failures, lock.first_failure_at = 0, None
                log.warning("console.locked_out", key=key)
            await lock.save()

    # One-time links -----------------------------------------------------------------------

    async def sign_in_link(self, manager: Manager) -> str:
        """A link that signs `manager` in once, within LINK_MINUTES (the bot's `/web`)."""
        token = await self.signer.sign(SIGN_IN, f"{manager.id}:{secrets.token_hex(8)}",
                                       self.clock() + timedelta(minutes=LINK_MINUTES))
        return f"{self.public_url}/console/link/{token}"

    async def check_sign_in_link(self, token: str) -> Manager:
        """Whom a link is for, without using it (LinkTampered, LinkExpired, LinkUsed)."""
        payload = await self.signer.verify(SIGN_IN, token)
        if await UsedLink.filter(token_hash=_digest(token)).exists():
            raise LinkUsed("this link was used already: ask the bot for a new one with /web")
        manager = await Manager.filter(id=int(payload.split(":")[0]), active=True).first()
        if manager is None:
            raise LinkTampered("this link is for nobody on the team now")
        return manager

    async def use_sign_in_link(self, token: str) -> tuple[Manager, str]:
        manager = await self.check_sign_in_link(token)
        await self._spend(token, SIGN_IN)
        return manager, await self.start(manager, how="link")

    async def _spend(self, token: str, purpose: str) -> None:
        try:
            await UsedLink.create(token_hash=_digest(token), purpose=purpose,
                                  used_at=self.clock())
        except IntegrityError:
            raise LinkUsed("this link was used already") from None

    async def first_admin_link(self) -> str | None:
        """While the team has no admin: a link that creates the first one."""
        if await Manager.filter(role=Role.ADMIN, active=True).exists():
            return None
        token = await self.signer.sign(
            FIRST_ADMIN, secrets.token_hex(8),
            self.clock() + timedelta(hours=self.settings.first_admin_link_hours))
        return f"{self.public_url}/console/first-admin/{token}"

    async def check_first_admin_link(self, token: str) -> None:
        await self.signer.verify(FIRST_ADMIN, token)
        if await UsedLink.filter(token_hash=_digest(token)).exists():
            raise LinkUsed("this link was used already")
        if await Manager.filter(role=Role.ADMIN, active=True).exists():
            raise Conflict("the team has an admin already: sign in, or ask them to add you")

    async def create_first_admin(self, token: str, name: str, email: str,
                                 password: str) -> tuple[Manager, str]:
        await self.check_first_admin_link(token)
        async with self.bus.unit_of_work():
            await self._spend(token, FIRST_ADMIN)
            manager = await self.managers.add(None, name, Role.ADMIN, email=email,
                                              actor="console:first-admin")
            await self.managers.set_password(manager, password, actor="console:first-admin")
        log.info("console.first_admin_created", manager_id=manager.id)
        return manager, await self.start(manager, how="first-admin")

    # Sessions -----------------------------------------------------------------------------

    async def start(self, manager: Manager, how: str) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        await StaffSession.create(token_hash=_digest(token), manager_id=manager.id,
                                  csrf=secrets.token_urlsafe(24), created_at=now,
                                  last_seen_at=now)
        await AuditLog.create(actor=f"manager:{manager.id}", action="console.signed_in",
                              detail={"how": how})
        return token

    async def check(self, token: str) -> SignedIn | None:
        """The session of a cookie's token, if it is live; it counts as used now."""
        if not token or len(token) > 100:
            return None
        row = await StaffSession.filter(token_hash=_digest(token), ended_at=None) \
            .select_related("manager").first()
        if row is None or not row.manager.active:
            return None
        now = self.clock()
        idle = timedelta(minutes=self.settings.session_idle_minutes)
        if now - row.last_seen_at > idle or \
                now - row.created_at > timedelta(hours=self.settings.session_max_hours):
            await StaffSession.filter(id=row.id).update(ended_at=now)
            return None
        if now - row.last_seen_at >= _TOUCH:
            await StaffSession.filter(id=row.id).update(last_seen_at=now)
        return SignedIn(row.id, row.manager, row.csrf)

    async def end(self, session_id: int) -> None:
        await StaffSession.filter(id=session_id, ended_at=None).update(ended_at=self.clock())
