"""Orders: the CSV import beside raw inserts, and "ORDER NUMBER" by SMS with many orders stored.

    .venv/bin/python bench/orders.py            # 100,000 orders; 1,000,000 stored for lookups
    .venv/bin/python bench/orders.py --quick    # 10,000 orders; 100,000 stored
    .venv/bin/python bench/orders.py --databases sqlite

For each database (an SQLite file, synchronous=NORMAL; a PostgreSQL 15 server the bench starts,
with fsync on), each measurement in a fresh process:

- import: `crm orders import`'s code (crm/imports/orders.py) on a CSV of N orders from N/5
  customers (matched by email, all new): rows per second from opening the file to the last
  commit, beside a baseline measured in the same run: the same rows (customers, identities,
  orders, their first status event, its line in the customer's timeline) written into the same
  migrated schema by the bare driver (aiosqlite or asyncpg) with `executemany`, a transaction
  per 1,000 orders, ids counted in memory: no CSV, no normalising, no lookups, no audit. The
  rows are the Python values the import has (datetimes included), built before the clock
  starts; the driver adapts them as it does the import's. Goal (issue 18): >= 25% of raw.
- lookup: with M orders stored (of M/10 customers with a phone each), "ORDER <number>" by SMS
  through the core's inbox (the customer dialogue with orders plugged in, as `crm run` has it),
  from the call to the answer's outbox row committed: p50 and p99, half of them for someone
  else's number; beside the same senders' plain messages through the bare ingest (p50, p99) in
  the same database. Goal: p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/email.py would shadow the standard library's `email` (imported by the libraries below).
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

STATUSES = ("new", "paid", "shipped", "delivered")
BATCH = 1000


def _quiet() -> None:
    logging.disable(logging.WARNING)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def orders(n: int, customers: int) -> list[tuple[str, str, str, str, str, str]]:
    rnd = random.Random(18)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [(f"B-{i:07d}", STATUSES[rnd.randrange(4)], f"buyer{i % customers}@example.com",
             f"{rnd.randrange(100, 100_000) / 100:.2f}",
             (start + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M"), "Mug x2; Plate")
            for i in range(n)]


def write_csv(path: Path, rows: list[tuple[str, ...]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("number,status,email,amount,placed_at,items\n")
        for r in rows:
            f.write(",".join(r) + "\n")


async def _migrated(url: str) -> None:
    from crm import db

    await db.init(url)
    await db.upgrade()


async def import_run(url: str, csv_path: str) -> float:
    from crm import db
    from crm.config import parse_settings
    from crm.imports.orders import OrderImporter
    from crm.services import Core

    await _migrated(url)
    core = Core.build(parse_settings({"database": {"url": url},
                                      "orders": {"csv": {"default_currency": "EUR"}}}))
    start = time.perf_counter()
    report = await OrderImporter(core, actor="import:bench").run(csv_path)
    elapsed = time.perf_counter() - start
    assert report.bad_count == 0, report
    assert report.created == report.rows, report
    await db.close()
    return report.rows / elapsed


def _raw_batches(data: list[tuple[str, ...]], customers: int
                 ) -> list[tuple[list[tuple[object, ...]], ...]]:
    """The rows the import writes, as tuples per batch of 1,000 orders."""
    now = datetime.now(UTC)
    seen: dict[str, int] = {}
    batches = []
    for start in range(0, len(data), BATCH):
        cust, ident, order, event, timeline = [], [], [], [], []
        for i, (number, status, email, amount, placed, _items) in enumerate(
                data[start:start + BATCH], start + 1):
            cid = seen.get(email)
            if cid is None:
                cid = seen[email] = len(seen) + 1
                cust.append((cid, None, now))
                ident.append((cid, "email", email, now))
            at = datetime.strptime(placed, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
            items = '[{"name":"Mug","quantity":2},{"name":"Plate","quantity":1}]'
            order.append((i, number, number.upper(), None, cid, status, items,
                          round(float(amount) * 100), "EUR", at, at, now, now))
            event.append((i, status, "import:bench", "", at, now))
            meta = json.dumps({"order": number, "status": status, "actor": "import:bench",
                               "phrase": _phrase(number, status)}, separators=(",", ":"))
            timeline.append((cid, "email", f"Order {number} placed: {status.title()} "
                             "(import:bench).", meta, False, now))
        batches.append((cust, ident, order, event, timeline))
    return batches


def _phrase(number: str, status: str) -> dict[str, Any]:
    """The shape of the phrase an imported order's timeline line keeps (crm/i18n.py)."""
    label = {"label": {"en": status.title(), "ru": status.title()}}
    actor = {"phrase": {"key": "actor_import", "args": {"name": "bench"}}}
    head = {"phrase": {"key": "event_order_placed", "args": {"number": number, "status": label,
                                                             "actor": actor}}}
    return {"key": "event_order", "args": {"head": head, "note": "", "untold": ""}}


_RAW = (
    "INSERT INTO customer (id, name, tags, attributes, created_at) VALUES (?, ?, '[]', '{}', ?)",
    "INSERT INTO identity (customer_id, channel, address, created_at) VALUES (?, ?, ?, ?)",
    "INSERT INTO customer_order (id, number, number_key, external_number, customer_id, status, "
    "items, amount_minor, currency, placed_at, status_changed_at, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO order_event (order_id, status, previous_status, source, actor, note, "
    "happened_at, created_at) VALUES (?, ?, NULL, 'import', ?, ?, ?, ?)",
    "INSERT INTO message (customer_id, direction, channel, text, attachments, meta, author_kind, "
    "delivery_status, automated, created_at) VALUES (?, 'event', ?, ?, '[]', ?, 'system', "
    "'received', ?, ?)",
)


def _pg(sql: str) -> str:
    n = iter(range(1, 100))
    return "".join(f"${next(n)}" if c == "?" else c for c in sql)


async def raw_run(url: str, data: list[tuple[str, ...]], customers: int) -> float:
    from crm import db

    await _migrated(url)  # the same schema, indexes included
    await db.close()
    batches = _raw_batches(data, customers)  # prepared before the clock starts
    if url.startswith("sqlite"):
        import aiosqlite

        path = url.removeprefix("sqlite://").split("?")[0]
        async with aiosqlite.connect(path) as conn:
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            start = time.perf_counter()
            for batch in batches:
                for sql, rows in zip(_RAW, batch, strict=True):
                    if rows:
                        await conn.executemany(sql, rows)
                await conn.commit()
            return len(data) / (time.perf_counter() - start)
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    start = time.perf_counter()
    for batch in batches:
        async with conn.transaction():
            for sql, rows in zip(_RAW, batch, strict=True):
                if rows:
                    await conn.executemany(_pg(sql), rows)
    rate = len(data) / (time.perf_counter() - start)
    await conn.close()
    return rate


async def fill(url: str, stored: int) -> None:
    """`stored` orders of stored/10 customers, each with a phone, in bulk (not measured)."""
    now = datetime.now(UTC)
    owners = stored // 10
    customers = [(c, None, now) for c in range(1, owners + 1)]
    phones = [(c, "sms", f"+1202{c:07d}", now) for c in range(1, owners + 1)]
    items = '[{"name":"Mug","quantity":1}]'
    rows = [(i, f"L-{i:07d}", f"L-{i:07d}", None, (i % owners) + 1, STATUSES[i % 4], items, 1990,
             "EUR", now, now, now, now) for i in range(1, stored + 1)]
    if url.startswith("sqlite"):
        import aiosqlite

        async with aiosqlite.connect(url.removeprefix("sqlite://").split("?")[0]) as conn:
            for sql, values in ((_RAW[0], customers), (_RAW[1], phones), (_RAW[2], rows)):
                for s in range(0, len(values), 50_000):
                    await conn.executemany(sql, [tuple(v.isoformat(" ") if isinstance(
                        v, datetime) else v for v in r) for r in values[s:s + 50_000]])
                await conn.commit()
            await conn.execute("ANALYZE")
            await conn.commit()
        return
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    await conn.copy_records_to_table("customer", records=[(c, "[]", "{}", now)
                                                          for c, _, _ in customers],
                                     columns=["id", "tags", "attributes", "created_at"])
    await conn.copy_records_to_table("identity", records=phones,
                                     columns=["customer_id", "channel", "address", "created_at"])
    await conn.copy_records_to_table("customer_order", records=rows, columns=[
        "id", "number", "number_key", "external_number", "customer_id", "status", "items",
        "amount_minor", "currency", "placed_at", "status_changed_at", "created_at",
        "updated_at"])
    for table in ("customer", "identity", "customer_order"):
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT MAX(id) FROM {table}))")
    await conn.execute("ANALYZE")
    await conn.close()


async def lookup_run(url: str, stored: int, asks: int) -> dict[str, list[float]]:
    from bot import Dialogue
    from bot.orders import OrderDialogue
    from crm import db
    from crm.automation import automation
    from crm.config import parse_settings
    from crm.services import Core
    from crm.types import Channel, InboundMessage

    await _migrated(url)
    await db.close()
    await fill(url, stored)
    await db.init(url)
    core = Core.build(parse_settings({"database": {"url": url},
                                      "orders": {"lookups_per_hour": 10_000},
                                      "http": {"link_secret": "s" * 32}}))
    automation(core)
    dialogue = Dialogue(core)
    OrderDialogue(dialogue).install()
    core.inbox = dialogue
    owners = stored // 10
    rnd = random.Random(7)
    times: dict[str, list[float]] = {"lookup": [], "plain": []}
    for n in range(asks):
        customer = rnd.randrange(1, owners + 1)
        own = n % 2 == 0
        # Order i belongs to customer (i % owners) + 1: one of theirs, or the next customer's.
        order = customer - 1 + owners * rnd.randrange(1, 10) if own \
            else (customer % owners) + owners
        sender = f"+1202{customer:07d}"
        for kind, text in (("plain", "where is my parcel?"), ("lookup", f"ORDER L-{order:07d}")):
            msg = InboundMessage(Channel.SMS, f"{kind}-{n}", sender, text=text)
            t0 = time.perf_counter()
            if kind == "plain":
                await core.timeline.ingest(msg)
            else:
                await core.inbox.receive(msg)
            times[kind].append(time.perf_counter() - t0)
    await db.close()
    return times


def child(kind: str, url: str, args: list[str]) -> None:
    _quiet()
    if kind == "import":
        out: object = asyncio.run(import_run(url, args[0]))
    elif kind == "raw":
        n, customers = int(args[0]), int(args[1])
        out = asyncio.run(raw_run(url, orders(n, customers), customers))
    else:
        out = asyncio.run(lookup_run(url, int(args[0]), int(args[1])))
    print(json.dumps(out))


def measure(kind: str, url: str, *args: object) -> object:
    done = subprocess.run([sys.executable, __file__, "--child", kind, url, *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.child[2:])
        return
    n, stored, asks = (10_000, 100_000, 300) if args.quick else (100_000, 1_000_000, 1_000)
    customers = n // 5
    print(f"orders: import {n:,} orders of {customers:,} customers; lookups with {stored:,} "
          f"stored, {asks:,} asks (half for someone else's number)")
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        os.chmod(tmp, 0o755)
        csv_path = Path(tmp) / "orders.csv"
        write_csv(csv_path, orders(n, customers))
        pg = None
        try:
            for database in args.databases.split(","):
                if database == "postgres":
                    from tests.support.postgres import start_postgres

                    pg = start_postgres(durable=True)

                def url(name: str, database: str = database, server: Any = pg) -> str:
                    if database == "sqlite":
                        return f"sqlite://{tmp}/{name}.sqlite3"
                    return str(server.url(server.create_database()))

                imported = float(measure("import", url("import"), csv_path))  # type: ignore[arg-type]
                raw = float(measure("raw", url("raw"), n, customers))  # type: ignore[arg-type]
                print(f"{database:9} import  {imported:9,.0f} rows/s   raw executemany "
                      f"{raw:9,.0f} rows/s   {imported / raw:5.0%} of raw (goal >= 25%)",
                      flush=True)
                times = measure("lookup", url("lookup"), stored, asks)
                assert isinstance(times, dict)
                look, plain = times["lookup"], times["plain"]
                print(f"{database:9} lookup  ORDER NUMBER by SMS, answer queued: p50 "
                      f"{_p(look, 50):5.2f} ms  p99 {_p(look, 99):5.2f} ms (goal < 50)   bare "
                      f"ingest p50 {_p(plain, 50):5.2f} ms  p99 {_p(plain, 99):5.2f} ms",
                      flush=True)
        finally:
            if pg is not None:
                pg.stop()


if __name__ == "__main__":
    main()
