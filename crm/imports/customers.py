"""`crm customers import FILE.csv`: contacts from another CRM, idempotent by identity.

A row's addresses (email, phone, Telegram id; normalised as typed) find the customer, whose
fields are updated where the row gives them, tags and attributes added to; a row whose
addresses lead nowhere is a new customer. Consent the file gives (marketing, notifications:
yes or no) is recorded for every channel with the source "import" through the consent service,
audited, and only where it changes something: importing the same file twice changes nothing the
second time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError

from crm import sql
from crm.imports.batch import DryRun, Ids, ImportReport, Owners, Progress, insert_customers
from crm.imports.reader import BadRow, CsvFile
from crm.imports.rows import CustomerRow, CustomerRows
from crm.models import AuditLog
from crm.services import Core
from crm.types import ConsentKind, ConsentSource
from crm.views import json_value

_COLUMNS = ("name", "language", "timezone", "lead_source", "tags", "attributes")
_UPDATE = ("UPDATE customer SET name = ?, language = ?, timezone = ?, lead_source = ?, "
           "tags = ?, attributes = ? WHERE id = ?")


class CustomerImporter:
    def __init__(self, core: Core, *, actor: str, batch_size: int = 500) -> None:
        self.core = core
        self.actor = actor
        self.batch_size = batch_size

    async def run(self, path: str | Path, *, dry_run: bool = False,
                  progress: Progress | None = None) -> ImportReport:
        settings = self.core.settings.customers.csv
        report = ImportReport(dry_run=dry_run)
        self._owners = Owners()
        self._ids = Ids("customer", dry_run)
        with CsvFile(path, encoding=settings.encoding, fallback=settings.fallback_encoding,
                     delimiter=settings.delimiter) as f:
            parser = CustomerRows(f, settings, self.core.settings.sms.default_region)
            batch: list[CustomerRow] = []
            for item in f.rows():
                report.rows += 1
                parsed = item if isinstance(item, BadRow) else parser.parse(*item)
                if isinstance(parsed, BadRow):
                    report.add_bad(parsed)
                    continue
                batch.append(parsed)
                if len(batch) >= self.batch_size:
                    await self._batch(batch, report, dry_run)
                    batch = []
                    if progress:
                        progress(f.position)
            if batch:
                await self._batch(batch, report, dry_run)
            if progress:
                progress(f.size)
        report.bad.sort(key=lambda b: b.line)
        if not dry_run:
            await AuditLog.create(actor=self.actor[:200], action="customers.imported", detail={
                "file": Path(path).name, "created": report.created, "updated": report.updated,
                "bad": report.bad_count})
        return report

    async def _batch(self, rows: list[CustomerRow], report: ImportReport,
                     dry_run: bool) -> None:
        for attempt in (1, 2, 3):
            known = dict(self._owners.known)
            delta = ImportReport()
            try:
                async with self.core.bus.unit_of_work() as tx:
                    await self._write(tx, rows, delta)
                    if dry_run:
                        raise DryRun
            except DryRun:
                pass
            except (IntegrityError, OperationalError):
                self._owners.known = known  # someone else wrote meanwhile: learn it again
                if attempt == 3:
                    raise
                continue
            break
        for name in ("created", "updated", "unchanged", "customers_created"):
            setattr(report, name, getattr(report, name) + getattr(delta, name))
        for bad in delta.bad:
            report.add_bad(bad)

    async def _write(self, tx: BaseDBAsyncClient, rows: list[CustomerRow],
                     out: ImportReport) -> None:
        now = self.core.clock()
        await self._owners.load(tx, (a for r in rows for a in r.identities))
        pool = await self._ids.take(tx, sum(1 for r in rows
                                               if not self._owners.owners(r.identities)))
        current = await _current(tx, {o for r in rows for o in self._owners.owners(r.identities)})
        created: list[list[object]] = []
        identities: list[list[object]] = []
        consents: list[tuple[int, ConsentKind, bool]] = []
        dirty: set[int] = set()
        for r in rows:
            owners = self._owners.owners(r.identities)
            if len(owners) > 1:
                who = ", ".join(f"#{o}" for o in owners)
                out.add_bad(BadRow(r.line, r.identities[0][0].value,
                                   f"the addresses lead to different customers ({who}): "
                                   "merge them first (crm customers merge)"))
                continue
            if owners:
                customer_id = owners[0]
                before = current[customer_id]
                after = _merged(before, r)
                current[customer_id] = after
                if after != before:
                    dirty.add(customer_id)
                if after != before or any(a not in self._owners.known for a in r.identities):
                    out.updated += 1
                else:
                    out.unchanged += 1
            else:
                customer_id = next(pool)
                created.append([customer_id, r.fields.get("name"), now])
                current[customer_id] = _merged(dict.fromkeys(_COLUMNS), r)
                dirty.add(customer_id)
                out.created += 1
                out.customers_created += 1
            for address in r.identities:
                if address not in self._owners.known:
                    self._owners.known[address] = customer_id
                    identities.append([customer_id, address[0].value, address[1], now])
            consents += [(customer_id, kind, granted) for kind, granted in (
                (ConsentKind.MARKETING, r.marketing),
                (ConsentKind.NOTIFICATIONS, r.notifications)) if granted is not None]
        await insert_customers(tx, created, identities, self.actor)
        values = [[c["name"], c["language"], c["timezone"], c["lead_source"],
                   json.dumps(c["tags"] or [], separators=(",", ":")),
                   json.dumps(c["attributes"] or {}, separators=(",", ":")), cid]
                  for cid, c in current.items() if cid in dirty]
        if values:
            await tx.execute_many(sql.dialect_sql(tx, _UPDATE), values)
        consent = self.core.consent
        for customer_id, kind, granted in consents:
            word = consent.start if granted else consent.stop
            await word(customer_id, None, kind=kind, source=ConsentSource.IMPORT,
                       actor=self.actor)


async def _current(tx: BaseDBAsyncClient, ids: set[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for row in await sql.fetch(tx, f"SELECT id, {', '.join(_COLUMNS)} FROM customer "
                                       f"WHERE id IN ({sql.placeholders(len(chunk))})", chunk):
            out[int(row["id"])] = {c: json_value(row[c]) if c in ("tags", "attributes")
                                   else row[c] for c in _COLUMNS}
    return out


def _merged(before: dict[str, Any], r: CustomerRow) -> dict[str, Any]:
    after = {**before, **r.fields}
    after["tags"] = sorted(set(before["tags"] or []) | set(r.tags))
    after["attributes"] = {**(before["attributes"] or {}), **r.attributes}
    return after
