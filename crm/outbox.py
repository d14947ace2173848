"""The durable outbox: the only way a message leaves the CRM.

A row is written in the transaction of the event that caused it. The dispatcher
(crm/dispatcher.py) claims due rows, sends them and records the outcome here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import structlog
from tortoise.connection import get_connection

from crm import metrics, sql
from crm.clock import Clock, now_ms, to_ms, utcnow
from crm.events import DeliveryChanged, EventBus, OutboxQueued
from crm.lanes import Lane
from crm.models import Identity, Message, Outbox
from crm.types import (
    Channel,
    DeliveryResult,
    DeliveryStatus,
    OutboundMessage,
    OutboxState,
    Priority,
)

log = structlog.get_logger(__name__)

_ALL_PRIORITIES = (Lane.LIVE.priorities[0], Lane.BULK.priorities[1])


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    channel: Channel
    address: str
    payload: dict[str, object]
    attempts: int
    message_id: int | None
    customer_id: int | None

    def to_message(self) -> OutboundMessage:
        return OutboundMessage.from_payload(self.channel, self.address, dict(self.payload),
                                            outbox_id=self.id)


# A row is claimable only at the head of its recipient's queue, which keeps one message in
# flight per recipient and the order of messages to one chat: no row to the same address is
# being sent, and no queued row to it goes before this one, in (priority, id) order. So a reply
# overtakes a campaign message queued earlier to the same chat (an earlier row blocks a later one
# only if its priority is <= the later one's), and each address has a single head at a time, so
# lanes claiming side by side (or processes, on PostgreSQL) never take two rows of one chat.
_HEAD_OF_QUEUE = (
    "NOT EXISTS (SELECT 1 FROM outbox e WHERE e.channel = o.channel "
    "AND e.address = o.address AND e.state IN ('queued', 'sending') "
    "AND (e.state = 'sending' OR e.priority < o.priority "
    "OR (e.priority = o.priority AND e.id < o.id)))"
)


class OutboxService:
    def __init__(self, bus: EventBus, clock: Clock = utcnow) -> None:
        self.bus = bus
        self.clock = clock

    async def enqueue(
        self,
        message: OutboundMessage,
        *,
        idempotency_key: str | None = None,
        priority: int = Priority.LIVE,
        customer_id: int | None = None,
        message_id: int | None = None,
        delay_seconds: float = 0,
    ) -> Outbox:
        """Queue a message; call inside the unit of work of its cause. A known key is a no-op."""
        key = idempotency_key or f"auto:{uuid.uuid4()}"
        existing = await Outbox.filter(idempotency_key=key).first()
        if existing is not None:
            return existing
        row = await Outbox.create(
            channel=message.channel, address=message.address, payload=message.to_payload(),
            idempotency_key=key, priority=priority, customer_id=customer_id,
            message_id=message_id, due_ms=to_ms(self.clock()) + int(delay_seconds * 1000),
        )
        await self.bus.emit(OutboxQueued(message.channel, priority, message.address))
        return row

    # The dispatcher's side ---------------------------------------------------------------

    async def claim(self, channel: Channel, limit: int, lease_seconds: float,
                    lane: Lane | None = None) -> list[Claimed]:
        """Take up to `limit` due rows of a channel (of one lane, or of all), most urgent and
        then oldest first.

        Only the head of each recipient's queue is claimable (see _HEAD_OF_QUEUE). On PostgreSQL
        `FOR UPDATE SKIP LOCKED` lets several processes claim disjoint rows; SQLite has one writer.
        """
        if limit <= 0:
            return []
        conn = get_connection("default")
        now = now_ms()
        low, high = lane.priorities if lane is not None else _ALL_PRIORITIES
        lock = "FOR UPDATE OF o SKIP LOCKED" if sql.is_postgres(conn) else ""
        rows = await sql.fetch(
            conn,
            "UPDATE outbox SET state = 'sending', lease_ms = ?, attempts = attempts + 1 "
            "WHERE id IN (SELECT o.id FROM outbox o WHERE o.state = 'queued' "
            "AND o.channel = ? AND o.priority BETWEEN ? AND ? AND o.due_ms <= ? "
            f"AND {_HEAD_OF_QUEUE} ORDER BY o.priority, o.id LIMIT ? {lock}) "
            "RETURNING id, channel, address, payload, attempts, message_id, customer_id",
            [now + int(lease_seconds * 1000), channel.value, low, high, now, limit])
        return [_claimed(r) for r in sorted(rows, key=lambda r: r["id"])]

    async def start_send(self, outbox_id: int, lease_seconds: float) -> bool:
        """Renew the lease of a claimed row as its send begins; False if it is no longer ours."""
        return await sql.execute(
            get_connection("default"),
            "UPDATE outbox SET lease_ms = ? WHERE id = ? AND state = 'sending'",
            [now_ms() + int(lease_seconds * 1000), outbox_id]) == 1

    async def next_due_ms(self, channel: Channel,
                          lanes: Iterable[Lane] = tuple(Lane)) -> dict[Lane, int]:
        """When each lane's next claimable row falls due: the earliest head of a recipient's
        queue under the claim's own rule (a row behind one in backoff, or behind one being
        sent, waits for it, so it must not wake us). Lanes with nothing queued are left out."""
        wanted = set(lanes)
        if not wanted:
            return {}
        low = min(lane.priorities[0] for lane in wanted)
        high = max(lane.priorities[1] for lane in wanted)
        rows = await sql.fetch(
            get_connection("default"),
            "SELECT o.priority AS priority, MIN(o.due_ms) AS due FROM outbox o "
            "WHERE o.state = 'queued' AND o.channel = ? AND o.priority BETWEEN ? AND ? "
            f"AND {_HEAD_OF_QUEUE} GROUP BY o.priority", [channel.value, low, high])
        due: dict[Lane, int] = {}
        for row in rows:
            lane = Lane.of(int(row["priority"]))
            if lane in wanted and row["due"] is not None:
                due[lane] = min(due.get(lane, int(row["due"])), int(row["due"]))
        return due

    async def release(self, ids: list[int], *, due_ms: int | None = None) -> None:
        """Give claimed-but-unsent rows back to the queue (shutdown, or a recipient that is not
        ready yet), due again at `due_ms` if given; the attempt did not count."""
        if ids:
            due, params = ("", []) if due_ms is None else (", due_ms = ?", [due_ms])
            await sql.execute(
                get_connection("default"),
                f"UPDATE outbox SET state = 'queued', lease_ms = NULL{due}, "
                "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
                f"WHERE state = 'sending' AND id IN ({sql.placeholders(len(ids))})",
                [*params, *ids])

    async def requeue_expired(self, *, everything: bool = False) -> int:
        """Rows whose sender died mid-send go back to the queue (the documented resend window)."""
        where, params = ("", []) if everything else (" AND lease_ms < ?", [now_ms()])
        count = await sql.execute(
            get_connection("default"),
            f"UPDATE outbox SET state = 'queued', lease_ms = NULL WHERE state = 'sending'{where}",
            params)
        if count:
            log.warning("outbox.requeued_interrupted", rows=count)
        return count

    async def record(self, claimed: Claimed, result: DeliveryResult, *, retry_in: float | None,
                     give_up: bool) -> OutboxState:
        """Store the outcome of one send in its own short transaction."""
        now = self.clock()
        async with self.bus.unit_of_work() as tx:
            if result.outcome == "sent":
                # The common outcome, in plain SQL: the ORM's query building cost more than
                # the statement (see crm/sql.py).
                state = OutboxState.SENT
                await sql.execute(tx, "UPDATE outbox SET state = 'sent', external_id = ?, "
                                  "sent_at = ?, lease_ms = NULL, last_error = NULL WHERE id = ?",
                                  [result.external_id, now, claimed.id])
                # Recorded even if the row was re-queued meanwhile: it *was* sent, and a 'sent'
                # row is never claimed again.
                status, error = DeliveryStatus.SENT, None
            elif result.outcome == "retry" and not give_up and retry_in is not None:
                # Only a row still being sent goes back to the queue: not one cancelled (forget)
                # or taken over meanwhile.
                await Outbox.filter(id=claimed.id, state=OutboxState.SENDING).update(
                    state=OutboxState.QUEUED, lease_ms=None,
                    due_ms=to_ms(now) + int(retry_in * 1000), last_error=_cut(result.error))
                return OutboxState.QUEUED
            else:
                state = OutboxState.FAILED
                await Outbox.filter(id=claimed.id).update(
                    state=state, lease_ms=None, last_error=_cut(result.error))
                status, error = DeliveryStatus.FAILED, _cut(result.error)
                if result.outcome == "permanent" and result.address_fault:
                    await mark_undeliverable(claimed.channel, claimed.address,
                                             error or "permanent failure", now,
                                             opted_out=result.opted_out)
            if claimed.message_id is not None and status is DeliveryStatus.SENT \
                    and not result.meta:
                await sql.execute(tx, "UPDATE message SET delivery_status = 'sent', "
                                  "delivery_error = NULL, sent_at = ?, "
                                  "external_id = COALESCE(?, external_id) WHERE id = ?",
                                  [now, result.external_id, claimed.message_id])
            elif claimed.message_id is not None:
                fields: dict[str, object] = {"delivery_status": status, "delivery_error": error}
                if result.external_id:
                    fields["external_id"] = result.external_id
                if status is DeliveryStatus.SENT:
                    fields["sent_at"] = now
                if result.meta:
                    message = await Message.get(id=claimed.message_id)
                    fields["meta"] = {**message.meta, **result.meta}
                await Message.filter(id=claimed.message_id).update(**fields)
            if state is OutboxState.SENT:
                metrics.MESSAGES_OUT.labels(channel=claimed.channel.value).inc()
            await self.bus.emit(DeliveryChanged(
                message_id=claimed.message_id, outbox_id=claimed.id,
                customer_id=claimed.customer_id, channel=claimed.channel, status=status,
                error=error))
        return state

    async def record_sent(self, items: list[tuple[Claimed, DeliveryResult]]) -> None:
        """Store many plain "sent" outcomes in one transaction (a campaign's bulk lane at
        hundreds a second: one commit per message would hold the database for each)."""
        now = self.clock()
        async with self.bus.unit_of_work() as tx:
            await tx.execute_many(sql.dialect_sql(
                tx, "UPDATE outbox SET state = 'sent', external_id = ?, sent_at = ?, "
                    "lease_ms = NULL, last_error = NULL WHERE id = ?"),
                [[result.external_id, now, claimed.id] for claimed, result in items])
            messages = [[now, result.external_id, claimed.message_id]
                        for claimed, result in items if claimed.message_id is not None]
            if messages:
                await tx.execute_many(sql.dialect_sql(
                    tx, "UPDATE message SET delivery_status = 'sent', delivery_error = NULL, "
                        "sent_at = ?, external_id = COALESCE(?, external_id) WHERE id = ?"),
                    messages)
            for claimed, _result in items:
                metrics.MESSAGES_OUT.labels(channel=claimed.channel.value).inc()
                await self.bus.emit(DeliveryChanged(
                    message_id=claimed.message_id, outbox_id=claimed.id,
                    customer_id=claimed.customer_id, channel=claimed.channel,
                    status=DeliveryStatus.SENT, error=None, batched=True))

    async def record_delivery(self, channel: Channel, external_id: str, status: DeliveryStatus,
                              error: str | None = None, *, permanent: bool = False) -> bool:
        """A later delivery report (SMS DLR, mail bounce, Telegram read): update the message."""
        async with self.bus.unit_of_work():
            # Locked: two reports racing (Kannel's "accepted" and "delivered" arrive together)
            # must not both read "sent" and let the older one win (PostgreSQL; SQLite has one
            # writer anyway).
            message = await Message.filter(channel=channel, external_id=external_id
                                           ).select_for_update().first()
            if message is None:
                return False
            order = list(DeliveryStatus)
            # Reports can arrive out of order; never step back from delivered/read to sent.
            if (status is not DeliveryStatus.FAILED
                    and message.delivery_status is not DeliveryStatus.FAILED
                    and order.index(status) < order.index(message.delivery_status)):
                return True
            message.delivery_status = status
            message.delivery_error = _cut(error)
            await message.save(update_fields=["delivery_status", "delivery_error"])
            if status is DeliveryStatus.FAILED and permanent:
                identity = await Identity.filter(id=message.identity_id).first() \
                    if message.identity_id else None
                if identity is not None:
                    await mark_undeliverable(identity.channel, identity.address,
                                             error or "undeliverable", self.clock())
            await self.bus.emit(DeliveryChanged(
                message_id=message.id, outbox_id=None, customer_id=message.customer_id,
                channel=channel, status=status, error=_cut(error)))
        return True


async def mark_undeliverable(channel: Channel, address: str, reason: str, now: object, *,
                             opted_out: bool = False) -> None:
    updated = await Identity.filter(channel=channel, address=address).update(
        undeliverable_reason=_cut(reason), undeliverable_at=now,
        undeliverable_kind="opted_out" if opted_out else None)
    if updated:
        log.warning("identity.undeliverable", channel=channel.value, reason=reason)


async def mark_reachable(identity_id: int, *, opted_in: bool) -> int:
    """The customer wrote from this address: it takes our messages again (they unblocked the
    bot, their mailbox works). A provider-level opt-out (Twilio 21610) stays until they opt in
    (START)."""
    query = Identity.filter(id=identity_id).exclude(undeliverable_reason=None)
    if not opted_in:
        query = query.filter(undeliverable_kind=None)
    cleared = await query.update(undeliverable_reason=None, undeliverable_at=None,
                                 undeliverable_kind=None)
    if cleared:
        log.info("identity.reachable_again", identity_id=identity_id)
    return int(cleared)


def _cut(text: str | None, limit: int = 500) -> str | None:
    return None if text is None else text[:limit]


def _claimed(row: dict[str, object]) -> Claimed:
    payload = row["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload)
    return Claimed(
        id=int(row["id"]),  # type: ignore[call-overload]
        channel=Channel(str(row["channel"])), address=str(row["address"]),
        payload=payload,  # type: ignore[arg-type]
        attempts=int(row["attempts"]),  # type: ignore[call-overload]
        message_id=row["message_id"],  # type: ignore[arg-type]
        customer_id=row["customer_id"],  # type: ignore[arg-type]
    )

