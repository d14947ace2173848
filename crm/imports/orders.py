"""`crm orders import FILE.csv`: an idempotent upsert of orders by number, streaming.

Per row: the order's number (its key ignores case), the customer matched by email, phone or
Telegram id (normalised as typed) or created, the fields given (an empty cell leaves a field as
it is). A new order enters its status (the row's, else the first of `[orders]`) with an event
in its history and its customer's timeline, and `order.status_changed` for the webhooks; an
existing one is updated, and a new status goes through the orders service
like any other change (history, the customer's timeline, the webhook; the customer is told only
with `notify`, since an import is usually history, not news). A row that changes nothing writes
nothing: importing a file twice is importing it once.

Bad rows (file, line, field, reason) are reported and skipped; the good ones are stored.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError

from crm import sql
from crm.events import OrderStatusChanged
from crm.imports.batch import DryRun, Ids, ImportReport, Owners, Progress, insert_customers
from crm.imports.reader import BadRow, CsvFile
from crm.imports.rows import OrderRow, OrderRows
from crm.models import AuditLog, Order
from crm.orders.numbers import InvalidOrder, to_minor
from crm.orders.statuses import StatusConflict
from crm.services import Core

_EXISTING = ("SELECT id, number_key, customer_id, status, external_number, amount_minor, "
             "currency, placed_at, items FROM customer_order WHERE number_key IN ")
_INSERT = ("INSERT INTO customer_order (id, number, number_key, external_number, customer_id, "
           "status, items, amount_minor, currency, placed_at, status_changed_at, created_at, "
           "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_EVENT = ("INSERT INTO order_event (order_id, status, previous_status, source, actor, note, "
          "happened_at, created_at) VALUES (?, ?, NULL, 'import', ?, ?, ?, ?)")
_TIMELINE = ("INSERT INTO message (customer_id, direction, channel, text, attachments, meta, "
             "author_kind, delivery_status, automated, created_at) "
             "VALUES (?, 'event', ?, ?, '[]', ?, 'system', 'received', ?, ?)")
_UPDATE = ("UPDATE customer_order SET customer_id = ?, external_number = ?, items = ?, "
           "amount_minor = ?, currency = ?, placed_at = ?, updated_at = ? WHERE id = ?")


@dataclass(frozen=True, slots=True)
class _State:
    """An order as stored (or as this batch leaves it)."""

    id: int
    customer_id: int
    status: str
    external_number: str | None
    amount_minor: int | None
    currency: str | None
    placed_at: datetime | None
    items: str  # as JSON text, compared as such


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # as the ORM writes JSON fields


def _json(items: list[dict[str, Any]]) -> str:
    return _ENCODE(items)


class OrderImporter:
    def __init__(self, core: Core, *, actor: str, notify: bool = False,
                 batch_size: int = 1000) -> None:
        self.core = core
        self.actor = actor
        self.notify = notify
        self.batch_size = batch_size

    async def run(self, path: str | Path, *, dry_run: bool = False,
                  progress: Progress | None = None) -> ImportReport:
        settings = self.core.settings.orders.csv
        report = ImportReport(dry_run=dry_run)
        self._owners = Owners()
        self._customer_ids = Ids("customer", dry_run)
        self._order_ids = Ids("customer_order", dry_run)
        self._seen: dict[str, _State] = {}  # a dry run's orders, as if stored
        with CsvFile(path, encoding=settings.encoding, fallback=settings.fallback_encoding,
                     delimiter=settings.delimiter) as f:
            parser = OrderRows(f, settings, self.core.orders.statuses,
                               self.core.settings.sms.default_region)
            batch: list[OrderRow] = []
            # The next batch is read while the last one is written: the database works in its
            # own thread (SQLite) or server, so reading yields to it every few rows.
            writing: asyncio.Task[None] | None = None
            for item in f.rows():
                report.rows += 1
                parsed = item if isinstance(item, BadRow) else parser.parse(*item)
                if isinstance(parsed, BadRow):
                    report.add_bad(parsed)
                else:
                    batch.append(parsed)
                if len(batch) >= self.batch_size:
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(self._batch(batch, report, dry_run))
                    batch = []
                    if progress:
                        progress(f.position)
                if writing is not None and report.rows % 64 == 0:
                    await asyncio.sleep(0)
            if writing is not None:
                await writing
            if batch:
                await self._batch(batch, report, dry_run)
            if progress:
                progress(f.size)
        report.bad.sort(key=lambda b: b.line)
        if not dry_run:
            await AuditLog.create(actor=self.actor[:200], action="orders.imported", detail={
                "file": Path(path).name, "created": report.created, "updated": report.updated,
                "bad": report.bad_count})
        return report

    async def _batch(self, rows: list[OrderRow], report: ImportReport, dry_run: bool) -> None:
        for attempt in (1, 2, 3):
            known = dict(self._owners.known)
            seen = dict(self._seen)
            delta = ImportReport()
            try:
                async with self.core.bus.unit_of_work() as tx:
                    await self._write(tx, rows, delta, dry_run)
                    if dry_run:
                        raise DryRun
            except DryRun:
                pass
            except (IntegrityError, OperationalError):
                # Another process wrote one of these (an address, a number) meanwhile, or held
                # the database: what this batch learnt is forgotten and it runs again.
                self._owners.known, self._seen = known, seen
                if attempt == 3:
                    raise
                continue
            break
        report.created += delta.created
        report.updated += delta.updated
        report.unchanged += delta.unchanged
        report.customers_created += delta.customers_created
        for bad in delta.bad:
            report.add_bad(bad)

    async def _write(self, tx: BaseDBAsyncClient, rows: list[OrderRow], out: ImportReport,
                     dry_run: bool) -> None:
        now = self.core.clock()
        states = await self._existing(tx, {r.key for r in rows})
        await self._owners.load(tx, (a for r in rows for a in r.identities))
        customer_pool = await self._customer_ids.take(tx, sum(
            1 for r in rows if r.identities and not self._owners.owners(r.identities)))
        order_pool = await self._order_ids.take(tx, sum(
            1 for r in {r.key: r for r in rows if r.key not in states}.values()))
        customers: list[list[object]] = []
        identities: list[list[object]] = []
        inserts: list[list[object]] = []
        events: list[list[object]] = []
        timeline: list[list[object]] = []
        placed_orders: list[OrderStatusChanged] = []
        updates: list[list[object]] = []
        changes: list[tuple[int, str, str, str]] = []  # order id, previous, status, note
        orders = self.core.orders
        statuses = orders.statuses
        for r in rows:
            owners = self._owners.owners(r.identities)
            state = states.get(r.key)
            minor = r.amount_minor
            if r.amount_text is not None:  # no currency in the row: the order's own, if any
                try:
                    minor = to_minor(r.amount_text, state.currency if state else None)
                except InvalidOrder as e:
                    out.add_bad(BadRow(r.line, e.field, e.reason))
                    continue
            if len(owners) > 1:
                who = ", ".join(f"#{o}" for o in owners)
                out.add_bad(BadRow(r.line, r.identities[0][0].value,
                                   f"the addresses lead to different customers ({who}): "
                                   "merge them first (crm customers merge)"))
                continue
            new_customer = False
            if owners:
                customer_id = owners[0]
            elif r.identities:
                customer_id, new_customer = next(customer_pool), True
                customers.append([customer_id, r.name, now])
                out.customers_created += 1
            elif state is not None:
                customer_id = state.customer_id
            else:
                out.add_bad(BadRow(r.line, "email", "a new order needs its customer: an "
                                                    "email, phone or telegram_id"))
                continue
            # A shop's data adds no address to a customer we know (crm/orders/service.py
            # `customer_for` says why); a new customer gets all of the row's.
            for address in r.identities if new_customer else ():
                if address not in self._owners.known:
                    self._owners.known[address] = customer_id
                    identities.append([customer_id, address[0].value, address[1], now])
            if state is None:
                status = r.status or statuses.initial
                order_id = next(order_pool)
                items = _json(r.items or [])
                placed = r.placed_at or now
                inserts.append([order_id, r.number, r.key, r.external_number, customer_id,
                                status, items, minor, r.currency, placed, placed, now,
                                now])
                events.append([order_id, status, self.actor[:200], r.note, placed, now])
                # Its first status is in the customer's timeline, as an order placed through
                # the API is (the address it came by names the channel).
                text, said = await orders.event_entry(r.number, None, status, self.actor,
                                                      r.note)
                timeline.append([customer_id, r.identities[0][0].value, text,
                                 _ENCODE({"order": r.number, "status": status,
                                          "actor": self.actor, "phrase": said.to_json()}),
                                 False, now])
                placed_orders.append(OrderStatusChanged(
                    order_id, customer_id, r.number, status, None, "import", self.actor,
                    r.note, placed))
                states[r.key] = _State(order_id, customer_id, status, r.external_number,
                                       minor, r.currency, placed, items)
                out.created += 1
                continue
            new = _merged(state, r, customer_id, minor)
            status = r.status or state.status
            try:
                statuses.check_move(r.number, state.status, status)
            except StatusConflict as e:
                out.add_bad(BadRow(r.line, "status", str(e)))
                continue
            if new == state and status == state.status:
                out.unchanged += 1
                continue
            if new != state:
                updates.append([new.customer_id, new.external_number, new.items,
                                new.amount_minor, new.currency, new.placed_at, now, new.id])
            if status != state.status:
                changes.append((state.id, state.status, status, r.note))
            states[r.key] = replace(new, status=status)
            out.updated += 1
        await insert_customers(tx, customers, identities, self.actor)
        for statement, values in ((_INSERT, inserts), (_EVENT, events), (_TIMELINE, timeline),
                                  (_UPDATE, updates)):
            if values:
                await tx.execute_many(sql.dialect_sql(tx, statement), values)
        for placed_event in placed_orders:  # webhooks (order.status_changed), if any listen
            await self.core.bus.emit(placed_event)
        for order_id, previous, status, note in changes:
            order = await Order.get(id=order_id, using_db=tx)
            order.status, order.status_changed_at = status, now
            await order.save(update_fields=["status", "status_changed_at"], using_db=tx)
            await self.core.orders.enter(order, previous, note=note, at=now, source="import",
                                         actor=self.actor, notify=self.notify)
        if dry_run:
            self._seen.update(states)

    async def _existing(self, tx: BaseDBAsyncClient, keys: set[str]) -> dict[str, _State]:
        found = {k: self._seen[k] for k in keys if k in self._seen}
        wanted = [k for k in keys if k not in found]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for row in await sql.fetch(tx, _EXISTING + f"({sql.placeholders(len(chunk))})",
                                       chunk):
                items = row["items"]  # JSON text, or (PostgreSQL) as the database spells it
                items = _json(json.loads(items) if isinstance(items, str) else items or [])
                found[row["number_key"]] = _State(
                    int(row["id"]), int(row["customer_id"]), row["status"],
                    row["external_number"], row["amount_minor"], row["currency"],
                    sql.as_datetime(row["placed_at"]),
                    items)
        return found


def _merged(state: _State, r: OrderRow, customer_id: int, minor: int | None) -> _State:
    """The stored order with what the row gives (an empty cell keeps the stored value)."""
    return _State(
        state.id, customer_id, state.status,
        r.external_number if r.external_number is not None else state.external_number,
        minor if minor is not None else state.amount_minor,
        r.currency if r.currency is not None else state.currency,
        r.placed_at if r.placed_at is not None else state.placed_at,
        _json(r.items) if r.items is not None else state.items)
