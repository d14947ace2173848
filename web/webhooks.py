"""The webhook channel's sender: POSTs each event to its receiver, signed as Stripe does.

`Chatcrm-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>`.
The body is the exact bytes crm/webhooks.py stored, so a retry carries the same event id and
body; only the timestamp (and so the signature) is new. 2xx: sent. 410 Gone: this event is not
wanted: failed for good, and the next one goes. Anything else (any other 4xx, a 3xx, a 5xx, a
timeout, a refused connection): retried with the outbox's backoff, up to `[api]
webhook_max_attempts`. A 401, 403 or 404 is retried too: a proxy in front of a receiver that
is being deployed answers them for a while, and the events must not be lost. Events to one
receiver go in order, so the ones after an event being retried wait for it. A receiver's
failure never marks anything undeliverable (address_fault=False).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

import aiohttp

from crm.config import WebhookSettings
from crm.ports import RateLimits
from crm.types import Channel, DeliveryResult, OutboundMessage

SIGNATURE_HEADER = "Chatcrm-Signature"
USER_AGENT = "chatcrm-webhooks/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The v1 signature: hex HMAC-SHA256 of `timestamp.body` keyed with the secret."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, *, now: float,
           tolerance: float = 300) -> bool:
    """What a receiver does (the README shows the same in a few lines)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), parts.get("v1", ""))


class WebhookSender:
    """The Sender of Channel.WEBHOOK; its address is the receiver's URL."""

    channel = Channel.WEBHOOK

    def __init__(self, hooks: Sequence[WebhookSettings], *, timeout: float, max_attempts: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.hooks = {h.url: h for h in hooks}
        self.timeout = timeout
        # The dispatcher gives up after this many attempts (instead of [outbox] max_attempts):
        # a receiver may be down for hours and should still get every event when it is back.
        self.max_attempts = max_attempts
        self.clock = clock
        self.limits = RateLimits(per_second=sum(h.rate_per_second for h in hooks) or 1.0,
                                 per_recipient=self._per_receiver)
        self._session: aiohttp.ClientSession | None = None

    def _per_receiver(self, url: str) -> tuple[float, float] | None:
        hook = self.hooks.get(url)
        if hook is None:
            return None
        if hook.rate_per_second < 1:
            # One POST every 1/rate seconds: a limiter holding less than one POST (0.5 in a
            # second) could never let one through.
            return (1.0, 1.0 / hook.rate_per_second)
        return (hook.rate_per_second, 1.0)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        hook = self.hooks.get(message.address)
        if hook is None:
            return DeliveryResult.permanent("no [[webhooks]] entry has this url any more",
                                            address_fault=False)
        body = message.text.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(hook.secret, int(self.clock()), body),
            "Chatcrm-Event": str(message.options.get("event", "")),
            "Chatcrm-Event-Id": str(message.options.get("event_id", "")),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._session.post(hook.url, data=body, headers=headers,
                                          allow_redirects=False) as response:
                await response.content.read(64 * 1024)  # a little of the answer, then close
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as e:
            return DeliveryResult.retry(f"webhook: {type(e).__name__}: {e}"[:300])
        if 200 <= status < 300:
            return DeliveryResult.sent(str(message.options.get("event_id") or "") or None)
        if status == 410:  # the one answer that says "never this event": the next one goes
            return DeliveryResult.permanent("webhook: HTTP 410: the receiver does not want "
                                            "this event", address_fault=False)
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        return DeliveryResult.retry(f"webhook: HTTP {status}", retry_after=wait)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
