"""Linking an address a customer gives us (in the web chat) only once they prove it is theirs.

A visitor of the web chat may leave an email address or a phone number for an answer there. The
address joins their customer only after they type back a code we sent to it (through the outbox,
like every message): otherwise anyone could claim a stranger's address and, by the merge that
linking an existing address causes, read into that person's timeline. Only an HMAC of the code
is kept; each check allows a few tries within a few minutes, and a customer may ask for a few
codes an hour.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from crm.clock import Clock, utcnow
from crm.consent import Consents
from crm.customers import Customers
from crm.errors import CrmError, InvalidAddress
from crm.events import EventBus
from crm.i18n import t
from crm.identity import normalize_email, normalize_phone
from crm.links import Signer
from crm.models import AddressCheck, Identity
from crm.outbox import OutboxService
from crm.types import Channel, OutboundMessage, Priority

log = structlog.get_logger(__name__)


class CheckRefused(CrmError):
    """Why a code was not sent or not accepted; `reason` is a key the caller words for the
    customer (invalid, unavailable, too_many, stopped, no_code, wrong_code)."""

    def __init__(self, reason: str, detail: str = "", *, attempts_left: int = 0) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.attempts_left = attempts_left


@dataclass(frozen=True, slots=True)
class Linked:
    """An address that was confirmed, and the customer it is now an identity of."""

    customer_id: int
    channel: Channel
    address: str


@dataclass(frozen=True, slots=True)
class CheckRules:
    minutes: float = 15.0
    attempts: int = 5
    per_hour: int = 5


def parse_contact(raw: str, default_region: str) -> tuple[Channel, str]:
    """An email address or a phone number as typed: its channel and address as stored."""
    text = raw.strip()
    if not text or len(text) > 320:
        raise InvalidAddress("give an email address or a phone number")
    if "@" in text:
        return Channel.EMAIL, normalize_email(text)
    return Channel.SMS, normalize_phone(text, default_region)


class AddressChecks:
    """Sends codes and confirms them; a customer's checks follow them (merge, export, forget)."""

    model = AddressCheck

    def __init__(self, bus: EventBus, outbox: OutboxService, customers: Customers,
                 consent: Consents, signer: Signer, company: str, clock: Clock = utcnow,
                 code: Callable[[], str] = lambda: f"{secrets.randbelow(10**6):06d}") -> None:
        self.bus = bus
        self.outbox = outbox
        self.customers = customers
        self.consent = consent
        self.signer = signer
        self.company = company
        self.clock = clock
        self._code = code

    async def _mac(self, check: AddressCheck | tuple[int, str, str], code: str) -> str:
        customer_id, channel, address = (check.customer_id, check.channel.value, check.address) \
            if isinstance(check, AddressCheck) else check
        body = f"address-check\0{customer_id}\0{channel}\0{address}\0{code}".encode()
        return hmac.new(await self.signer.key(), body, hashlib.sha256).hexdigest()

    async def request(self, customer_id: int, raw: str, *, available: Collection[Channel],
                      language: str, rules: CheckRules, default_region: str) -> AddressCheck:
        """Send a code to the address `raw` (an email or a phone number) on its channel, which
        must be one of `available` (configured). Raises CheckRefused."""
        try:
            channel, address = parse_contact(raw, default_region)
        except InvalidAddress as e:
            raise CheckRefused("invalid", str(e)) from None
        if channel not in available:
            raise CheckRefused("unavailable", f"{channel.value} is not configured")
        now = self.clock()
        async with self.bus.unit_of_work():
            customer = await self.customers.live(customer_id)
            recent = await AddressCheck.filter(customer_id=customer.id,
                                               created_at__gt=now - timedelta(hours=1)).count()
            if recent >= rules.per_hour:
                raise CheckRefused("too_many", f"{recent} codes within the hour")
            owner = await Identity.filter(channel=channel, address=address).first()
            if owner is not None and (owner.undeliverable_reason or await self.consent.refusal(
                    owner.customer_id, channel, "bot")):
                # A number that said STOP by SMS gets nothing from us until it says START.
                raise CheckRefused("stopped", f"{channel.value} address refuses our messages")
            code = self._code()
            check = await AddressCheck.create(
                customer_id=customer.id, channel=channel, address=address,
                code_hash=await self._mac((customer.id, channel.value, address), code),
                created_at=now, expires_at=now + timedelta(minutes=rules.minutes))
            await self.outbox.enqueue(
                OutboundMessage(channel, address, t("address_code", language, code=code,
                                                    company=self.company),
                                subject=t("address_code_subject", language,
                                          company=self.company),
                                options={"auto_submitted": "auto-generated"},
                                language=language),
                idempotency_key=f"address-check:{check.id}", priority=Priority.LIVE,
                customer_id=customer.id)
        log.info("address_check.sent", customer_id=customer.id, channel=channel.value,
                 check_id=check.id)
        return check

    async def confirm(self, customer_id: int, code: str, rules: CheckRules) -> Linked:
        """Link the address of the customer's latest check if `code` is its code; the address
        of another customer merges the two (crm/customers.py `link_identity`)."""
        now = self.clock()
        check = await AddressCheck.filter(customer_id=customer_id).order_by("-id").first()
        if check is None or check.confirmed_at is not None or check.expires_at <= now \
                or check.attempts >= rules.attempts:
            raise CheckRefused("no_code", "no code is waiting: ask for a new one")
        # Counted before the comparison, in a statement of its own: a wrong guess is spent
        # even if what follows fails, and two guesses at once cannot both use the last try.
        counted = await AddressCheck.filter(id=check.id, attempts__lt=rules.attempts,
                                            confirmed_at=None).update(
            attempts=check.attempts + 1)
        if not counted:
            raise CheckRefused("no_code", "no code is waiting: ask for a new one")
        given = "".join(ch for ch in code if ch.isdigit())[:12]
        if not hmac.compare_digest(await self._mac(check, given), check.code_hash):
            left = rules.attempts - check.attempts - 1
            raise CheckRefused("wrong_code" if left > 0 else "no_code",
                               "the code does not match", attempts_left=max(0, left))
        await AddressCheck.filter(id=check.id).update(confirmed_at=now)
        customer = await self.customers.link_identity(customer_id, check.channel, check.address,
                                                      actor="customer")
        log.info("address_check.confirmed", customer_id=customer.id,
                 channel=check.channel.value)
        return Linked(customer.id, check.channel, check.address)

    # A customer's data: checks move with a merge, are exported, go with forget.

    async def move(self, source_id: int, target_id: int) -> dict[str, int]:
        moved = await AddressCheck.filter(customer_id=source_id).update(customer_id=target_id)
        return {"address_checks": moved}

    async def export(self, customer_id: int) -> dict[str, Any]:
        rows = await AddressCheck.filter(customer_id=customer_id).order_by("id")
        return {"address_checks": [{
            "channel": r.channel.value, "address": r.address,
            "created_at": r.created_at.isoformat(),
            "confirmed_at": r.confirmed_at.isoformat() if r.confirmed_at else None}
            for r in rows]}

    async def forget(self, customer_id: int) -> dict[str, int]:
        return {"address_checks": await AddressCheck.filter(customer_id=customer_id).delete()}
