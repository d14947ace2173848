"""Queueing a campaign's next recipients: one batch, one transaction.

For each pending recipient that is due: wait for morning when it is quiet hours where they live
(deferred, counted); else take the first channel of the campaign's preference on which they have
a usable address and have not refused marketing (crm/consent.py `effective`, the same rule as
every other send); render their message there; and write the timeline entry, the outbox row (the
bulk lane, key `campaign:<id>:<customer>`) and the recipient's new state together. Who has no
such channel is skipped with the reason. The writes are multi-row statements: a batch costs a
handful of queries, not a few per person.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from crm import sql
from crm.campaigns.quiet import quiet_until, zone_of
from crm.campaigns.render import NO_ORDER, Person, Renderer
from crm.clock import to_ms
from crm.consent import effective
from crm.models import Consent
from crm.templates import TemplateProblem
from crm.types import Channel, ConsentKind, OutboundMessage, Priority, SkipReason
from crm.views import json_value

log = structlog.get_logger(__name__)


@dataclass
class Batch:
    """What one batch decided, before it is written."""

    queued: list[tuple[int, int, int, OutboundMessage]] = field(default_factory=list)
    skipped: list[tuple[str, int]] = field(default_factory=list)  # (reason, recipient)
    failed: list[tuple[str, int]] = field(default_factory=list)  # (error, recipient)
    deferred: list[tuple[datetime, int]] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return len(self.queued) + len(self.skipped) + len(self.failed) + len(self.deferred)


@dataclass(frozen=True, slots=True)
class Rules:
    """What decides a recipient's channel and time."""

    channels: Sequence[Channel]  # the campaign's preference, those with a sender
    quiet: Any  # (start, end) local times, or None
    default_zone: str
    marketing_default: bool


async def pending(campaign_id: int, now: datetime, limit: int) -> list[dict[str, Any]]:
    """The next recipients that are due, whose variant is known (A/B: the rest wait)."""
    return await sql.fetch(
        get_connection("default"),
        "SELECT id, customer_id, variant FROM campaign_recipient WHERE campaign_id = ? AND "
        "state = 'pending' AND variant IS NOT NULL AND (due_at IS NULL OR due_at <= ?) "
        "ORDER BY id LIMIT ?", [campaign_id, now, limit])


@dataclass(frozen=True, slots=True)
class Reach:
    """An address a customer can be sent to: an identity not marked undeliverable."""

    id: int
    channel: Channel
    address: str


async def reachable(ids: Sequence[int]) -> dict[int, list[Reach]]:
    """Each customer's usable addresses, the most recently used first: one query, in plain
    SQL (model instances cost more to build than the query, at a campaign's pace)."""
    if not ids:
        return {}
    out: dict[int, list[Reach]] = {}
    for r in await sql.fetch(
            get_connection("default"),
            "SELECT id, customer_id, channel, address FROM identity WHERE customer_id IN "
            f"({sql.placeholders(len(ids))}) AND undeliverable_reason IS NULL "
            "ORDER BY last_seen_at DESC, id DESC", list(ids)):
        out.setdefault(int(r["customer_id"]), []).append(
            Reach(int(r["id"]), Channel(r["channel"]), str(r["address"])))
    return out


async def marketing_consents(ids: Sequence[int]) -> dict[int, list[Consent]]:
    """Each customer's word on marketing (most have none)."""
    out: dict[int, list[Consent]] = {}
    for consent in await Consent.filter(customer_id__in=ids, kind=ConsentKind.MARKETING):
        out.setdefault(consent.customer_id, []).append(consent)
    return out


async def _people(ids: list[int]) -> dict[int, dict[str, Any]]:
    """What decides and personalises a message, of each customer (plain SQL, see above)."""
    rows = await sql.fetch(
        get_connection("default"),
        "SELECT id, name, language, timezone, tags, attributes, lead_source, erased_at "
        f"FROM customer WHERE id IN ({sql.placeholders(len(ids))})", ids)
    return {int(r["id"]): r for r in rows}


async def decide(rows: list[dict[str, Any]], rules: Rules, renderer: Renderer,
                 now: datetime) -> Batch:
    ids = [int(r["customer_id"]) for r in rows]
    customers = await _people(ids)
    identities = await reachable(ids)
    consents = await marketing_consents(ids)
    orders = await last_orders(ids) if renderer.uses_orders else {}
    batch = Batch()
    for row in rows:
        rid, cid = int(row["id"]), int(row["customer_id"])
        customer = customers.get(cid)
        if customer is None or customer["erased_at"] is not None:
            batch.skipped.append((SkipReason.ERASED.value, rid))
            continue
        until = quiet_until(now, zone_of(customer["timezone"], rules.default_zone), rules.quiet)
        if until is not None:
            batch.deferred.append((until, rid))
            continue
        chosen, refused = choose(identities.get(cid, []), consents.get(cid, []), rules)
        if chosen is None:
            batch.skipped.append(((SkipReason.NO_CONSENT if refused
                                   else SkipReason.UNREACHABLE).value, rid))
            continue
        person = Person(cid, customer["name"], customer["language"],
                        tuple(json_value(customer["tags"]) or ()),
                        dict(json_value(customer["attributes"]) or {}),
                        customer["lead_source"], orders.get(cid, NO_ORDER))
        try:
            message = renderer.message(chosen.channel, str(row["variant"]), person, rid,
                                       chosen.address)
        except TemplateProblem as e:
            batch.failed.append((f"template: {e}"[:500], rid))
            continue
        batch.queued.append((rid, cid, chosen.id, message))
    return batch


def choose(identities: list[Reach], consents: list[Consent],
           rules: Rules) -> tuple[Reach | None, bool]:
    """The first preferred channel with a usable address and consent; and whether some
    address was passed over for want of consent."""
    refused = False
    for channel in rules.channels:
        usable = [i for i in identities if i.channel is channel]
        if not usable:
            continue
        if not effective(consents, ConsentKind.MARKETING, channel.value,
                         rules.marketing_default).granted:
            refused = True
            continue
        return usable[0], refused
    return None, refused


async def last_orders(ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each customer's latest order as the templates see it (`last_order`)."""
    rows = await sql.fetch(
        get_connection("default"),
        "SELECT customer_id, number, status, amount_minor, currency FROM customer_order "
        f"WHERE customer_id IN ({sql.placeholders(len(ids))}) "
        "ORDER BY COALESCE(placed_at, created_at) DESC, id DESC", ids)
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        cid = int(r["customer_id"])
        if cid not in out:
            amount = r["amount_minor"]
            out[cid] = {"number": r["number"], "status": r["status"],
                        "amount": f"{int(amount) / 100:.2f}" if amount is not None else "",
                        "currency": r["currency"] or ""}
    return out


async def write(campaign_id: int, batch: Batch, now: datetime,
                still_sending: Collection[str] = ("sending",)) -> set[Channel] | None:
    """Store what the batch decided, in one transaction; None when the campaign left the
    sending state meanwhile (paused, cancelled): then nothing is written."""
    async with in_transaction() as tx:
        lock = " FOR UPDATE" if sql.is_postgres(tx) else ""
        state = await sql.fetch(tx, f"SELECT state FROM campaign WHERE id = ?{lock}",
                                [campaign_id])
        if not state or state[0]["state"] not in still_sending:
            return None
        channels: set[Channel] = set()
        if batch.queued:
            channels = await _queue(tx, campaign_id, batch.queued, now)
        if batch.skipped:
            await tx.execute_many(sql.dialect_sql(
                tx, "UPDATE campaign_recipient SET state = 'skipped', skip_reason = ? "
                    "WHERE id = ? AND state = 'pending'"), [list(s) for s in batch.skipped])
        if batch.failed:
            await tx.execute_many(sql.dialect_sql(
                tx, "UPDATE campaign_recipient SET state = 'failed', error = ?, failed_at = ? "
                    "WHERE id = ? AND state = 'pending'"),
                [[error, now, rid] for error, rid in batch.failed])
        if batch.deferred:
            await tx.execute_many(sql.dialect_sql(
                tx, "UPDATE campaign_recipient SET due_at = ?, deferred = ? WHERE id = ?"),
                [[until, True, rid] for until, rid in batch.deferred])
    return channels


async def _queue(tx: BaseDBAsyncClient, campaign_id: int,
                 rows: list[tuple[int, int, int, OutboundMessage]],
                 now: datetime) -> set[Channel]:
    meta = json.dumps({"campaign_id": campaign_id}, separators=(",", ":"))
    values: list[Any] = []
    for _rid, cid, identity_id, message in rows:
        values += [cid, identity_id, "out", message.channel.value, message.text, "[]", meta,
                   "campaign", "queued", False, now]
    found = await sql.fetch(tx, (
        "INSERT INTO message (customer_id, identity_id, direction, channel, text, attachments, "
        "meta, author_kind, delivery_status, automated, created_at) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
        + " RETURNING id, customer_id"), values)
    message_ids = {int(r["customer_id"]): int(r["id"]) for r in found}
    due = to_ms(now)
    values = []
    for _rid, cid, _identity, message in rows:
        values += [message.channel.value, message.address,
                   json.dumps(message.to_payload(), separators=(",", ":")),
                   f"campaign:{campaign_id}:{cid}", "queued", Priority.BULK, 0, due, cid,
                   message_ids[cid], now]
    found = await sql.fetch(tx, (
        "INSERT INTO outbox (channel, address, payload, idempotency_key, state, priority, "
        "attempts, due_ms, customer_id, message_id, created_at) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
        + " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, customer_id"), values)
    outbox_ids = {int(r["customer_id"]): int(r["id"]) for r in found}
    missing = [cid for _r, cid, _i, _m in rows if cid not in outbox_ids]
    if missing:  # queued before (never expected: recipient and row commit together)
        keys = [f"campaign:{campaign_id}:{cid}" for cid in missing]
        for r in await sql.fetch(tx, "SELECT id, customer_id FROM outbox WHERE "
                                     f"idempotency_key IN ({sql.placeholders(len(keys))})",
                                 keys):
            outbox_ids[int(r["customer_id"])] = int(r["id"])
        stray = [message_ids[cid] for cid in missing]
        await sql.execute(tx, f"DELETE FROM message WHERE id IN ({sql.placeholders(len(stray))})",
                          stray)
        log.warning("campaign.already_queued", campaign_id=campaign_id, customers=missing)
    await tx.execute_many(sql.dialect_sql(
        tx, "UPDATE campaign_recipient SET state = 'queued', channel = ?, outbox_id = ?, "
            "message_id = ?, queued_at = ? WHERE id = ? AND state = 'pending'"),
        [[m.channel.value, outbox_ids[cid], message_ids[cid], now, rid]
         for rid, cid, _i, m in rows])
    return {m.channel for _r, _c, _i, m in rows}
