"""Ingest throughput: inbound messages through the full ingest path vs raw driver inserts.

    .venv/bin/python bench/ingest.py            # 100,000 messages from 10,000 customers
    .venv/bin/python bench/ingest.py --quick    # 10,000 from 1,000 (a one-minute check)

For each database (an SQLite file, with synchronous=NORMAL, the default, and FULL; a PostgreSQL
15 server the bench starts, with fsync on) and each commit pattern (one commit per message;
batches of 100), it prints messages per second through `Timeline.ingest` / `ingest_batch` (dedupe,
identity, timeline, conversation, event) beside a baseline measured in the same run: the same
rows written through the bare driver (aiosqlite or asyncpg) with the same commit pattern and
durability setting, with ids kept in memory: no ORM, no lookups, no logic. Goal (issue 3):
>= 1,000 msg/s with one commit per message on SQLite, and >= 30% of the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/email.py would shadow the standard library's `email` (imported by the libraries below).
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]


def rows(messages: int, customers: int) -> list[tuple[str, str, str]]:
    return [(f"msg-{n}", f"customer{n % customers}@example.com", f"message number {n}")
            for n in range(messages)]


async def orm_run(url: str, data: list[tuple[str, str, str]], batch: int) -> float:
    from crm import db
    from crm.config import parse_settings
    from crm.events import EventBus
    from crm.timeline import Timeline
    from crm.types import Channel, InboundMessage

    await db.init(url)  # a `?synchronous=` in the URL wins over the default
    await db.upgrade()
    timeline = Timeline(parse_settings({"database": {"url": url}}), EventBus())
    msgs = [InboundMessage(Channel.EMAIL, ext, sender, text=text) for ext, sender, text in data]
    start = time.perf_counter()
    if batch == 1:
        for m in msgs:
            await timeline.ingest(m)
    else:
        for i in range(0, len(msgs), batch):
            await timeline.ingest_batch(msgs[i:i + batch])
    elapsed = time.perf_counter() - start
    await db.close()
    return len(msgs) / elapsed


# The baseline writes the same rows as ingest: a customer, an identity and a conversation for
# each new sender; then per message a message row and the conversation's last-inbound time. It
# keeps ids in a dict instead of looking them up, and has no ORM, no dedupe and no events.
BASELINE_DDL = (
    "CREATE TABLE customer (id {serial} PRIMARY KEY, created_at {ts} NOT NULL)",
    "CREATE TABLE identity (id {serial} PRIMARY KEY, customer_id INT NOT NULL, "
    "channel TEXT NOT NULL, address TEXT NOT NULL, UNIQUE (channel, address))",
    "CREATE TABLE conversation (id {serial} PRIMARY KEY, customer_id INT NOT NULL, "
    "status TEXT NOT NULL, last_inbound_at {ts})",
    "CREATE TABLE message (id {serial} PRIMARY KEY, customer_id INT NOT NULL, "
    "conversation_id INT, channel TEXT NOT NULL, external_id TEXT NOT NULL, text TEXT NOT NULL, "
    "created_at {ts} NOT NULL, UNIQUE (channel, external_id))",
)


async def raw_sqlite(path: str, data: list[tuple[str, str, str]], batch: int,
                     synchronous: str) -> float:
    import aiosqlite

    async with aiosqlite.connect(path) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={synchronous}")
        for ddl in BASELINE_DDL:
            await conn.execute(ddl.format(serial="INTEGER", ts="TEXT"))
        await conn.commit()
        ids: dict[str, tuple[int, int]] = {}
        start = time.perf_counter()
        for i, (ext, sender, text) in enumerate(data, 1):
            now = datetime.now(UTC).isoformat(" ")
            known = ids.get(sender)
            if known is None:
                cur = await conn.execute("INSERT INTO customer (created_at) VALUES (?)", (now,))
                cid = cur.lastrowid or 0
                await conn.execute("INSERT INTO identity (customer_id, channel, address) "
                                   "VALUES (?, 'email', ?)", (cid, sender))
                cur = await conn.execute("INSERT INTO conversation (customer_id, status) "
                                         "VALUES (?, 'open')", (cid,))
                known = ids[sender] = (cid, cur.lastrowid or 0)
            await conn.execute(
                "INSERT INTO message (customer_id, conversation_id, channel, external_id, text, "
                "created_at) VALUES (?, ?, 'email', ?, ?, ?)", (*known, ext, text, now))
            await conn.execute("UPDATE conversation SET last_inbound_at = ? WHERE id = ?",
                               (now, known[1]))
            if i % batch == 0:
                await conn.commit()
        await conn.commit()
        return len(data) / (time.perf_counter() - start)


async def raw_postgres(dsn: str, data: list[tuple[str, str, str]], batch: int) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    for ddl in BASELINE_DDL:
        await conn.execute(ddl.format(serial="SERIAL", ts="TIMESTAMPTZ"))
    ids: dict[str, tuple[int, int]] = {}
    start = time.perf_counter()
    for i in range(0, len(data), batch):
        async with conn.transaction():
            for ext, sender, text in data[i:i + batch]:
                now = datetime.now(UTC)
                known = ids.get(sender)
                if known is None:
                    cid = await conn.fetchval(
                        "INSERT INTO customer (created_at) VALUES ($1) RETURNING id", now)
                    await conn.execute("INSERT INTO identity (customer_id, channel, address) "
                                       "VALUES ($1, 'email', $2)", cid, sender)
                    conv = await conn.fetchval("INSERT INTO conversation (customer_id, status) "
                                               "VALUES ($1, 'open') RETURNING id", cid)
                    known = ids[sender] = (cid, conv)
                await conn.execute(
                    "INSERT INTO message (customer_id, conversation_id, channel, external_id, "
                    "text, created_at) VALUES ($1, $2, 'email', $3, $4, $5)",
                    *known, ext, text, now)
                await conn.execute("UPDATE conversation SET last_inbound_at = $1 WHERE id = $2",
                                   now, known[1])
    rate = len(data) / (time.perf_counter() - start)
    await conn.close()
    return rate


def child(kind: str, target: str, messages: int, customers: int, batch: int) -> None:
    """One measurement in a fresh process (Tortoise holds one dialect per process)."""
    logging.disable(logging.CRITICAL)
    data = rows(messages, customers)
    if kind == "orm":
        rate = asyncio.run(orm_run(target, data, batch))
    elif target.startswith("sqlite"):
        path, _, query = target.removeprefix("sqlite://").partition("?synchronous=")
        rate = asyncio.run(raw_sqlite(path, data, batch, query or "NORMAL"))
    else:
        rate = asyncio.run(raw_postgres(target, data, batch))
    print(json.dumps({"rate": rate}))


def measure(kind: str, target: str, messages: int, customers: int, batch: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", kind, target, str(messages),
                          str(customers), str(batch)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rate"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 messages, 1,000 customers")
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args()
    messages, customers = (10_000, 1_000) if args.quick else (100_000, 10_000)
    print(f"ingest: {messages:,} messages from {customers:,} customers")
    print(f"{'database':16} {'commit':18} {'ingest msg/s':>13} {'raw msg/s':>11} {'share':>7}")
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        os.chmod(tmp, 0o755)
        pg = None
        try:
            for database in args.databases.split(","):
                if database == "postgres":
                    from tests.support.postgres import start_postgres

                    pg = start_postgres(durable=True)
                runs = [(1, "NORMAL"), (100, "NORMAL"), (1, "FULL")] if database == "sqlite" \
                    else [(1, ""), (100, "")]
                for batch, sync in runs:
                    if database == "sqlite":
                        orm_url = f"sqlite://{tmp}/orm-{batch}-{sync}.sqlite3?synchronous={sync}"
                        raw_url = f"sqlite://{tmp}/raw-{batch}-{sync}.sqlite3?synchronous={sync}"
                    else:
                        assert pg is not None
                        orm_url, raw_url = pg.url(pg.create_database()), pg.url(
                            pg.create_database())
                    orm = measure("orm", orm_url, messages, customers, batch)
                    raw = measure("raw", raw_url, messages, customers, batch)
                    label = "per message" if batch == 1 else f"batches of {batch}"
                    name = f"{database} {sync.lower()}".strip()
                    print(f"{name:16} {label:18} {orm:13,.0f} {raw:11,.0f} "
                          f"{orm / raw:7.0%}", flush=True)
        finally:
            if pg is not None:
                pg.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
