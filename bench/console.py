"""The web console's server time and live latency, beside baselines from the same run.

    .venv/bin/python bench/console.py            # 100,000 conversations, 1,000,000 messages
    .venv/bin/python bench/console.py --quick    # 10,000 conversations, 100,000 messages
    .venv/bin/python bench/console.py --databases sqlite,postgres

For each database (an SQLite file, the default; a PostgreSQL 15 server the bench starts) it
stores N customers, each with one conversation (60% closed, 25% waiting on the customer, 15%
open and waiting on us; a fifth assigned to the signed-in manager) and ten messages, runs the
real service in this process (crm.app.App with the console), signs a manager in, and measures:

- the inbox page (`/console/inbox?list=open`: counts of the five lists, the first 50 rows) and
  a random customer's conversation page (card, timeline, orders), one request at a time,
  client-side latency over loopback: that is server time plus well under a millisecond;
- ingest to event: a message ingested through the core (`timeline.ingest`) until the console's
  event stream (`/console/events`) hands the `inbox` event to a client reading it.

Baselines, in the same run and process: a bare aiohttp handler rendering the same templates
with the same values kept in memory (no session, no database), and a bare server-sent-events
handler that forwards an in-memory queue to the same kind of client (the stream's own cost).
It prints p50 and p99 of each beside its baseline. Goals (issue 13): p99 under 100 ms for the
pages, under 500 ms from ingest to event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/email.py would shadow the standard library's `email` (imported by the libraries below).
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

PASSWORD = "bench password 123"
PER_CONVERSATION = 10


async def seed(url: str, conversations: int) -> None:
    """Customers, conversations and messages with plain SQL (the ORM would take minutes)."""
    from tortoise.connection import get_connection

    from crm import sql

    conn = get_connection("default")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    batch = 2_000
    message_id = 0
    for low in range(1, conversations + 1, batch):
        ids = range(low, min(conversations, low + batch - 1) + 1)
        at = {i: start + timedelta(seconds=i * 10) for i in ids}
        await conn.execute_many(sql.dialect_sql(
            conn, "INSERT INTO customer (id, name, language, tags, attributes, created_at, "
            "last_seen_at) VALUES (?, ?, 'en', ?, '{}', ?, ?)"),
            [[i, f"Customer {i}", json.dumps(["vip"] if i % 10 == 0 else []), at[i], at[i]]
             for i in ids])
        await conn.execute_many(sql.dialect_sql(
            conn, "INSERT INTO identity (id, customer_id, channel, address, created_at, "
            "last_seen_at) VALUES (?, ?, 'sms', ?, ?, ?)"),
            [[i, i, f"+1202{i:07d}", at[i], at[i]] for i in ids])
        rows = []
        for i in ids:
            kind = i % 20
            status = "closed" if kind < 12 else "waiting" if kind < 17 else "open"
            last_in = at[i] + timedelta(seconds=9)
            last_out = at[i] + timedelta(seconds=8 if status == "open" else 10)
            rows.append([i, i, status, 1 if i % 5 == 0 else None, at[i], last_in, last_out,
                         at[i] + timedelta(seconds=11) if status == "closed" else None])
        await conn.execute_many(sql.dialect_sql(
            conn, "INSERT INTO conversation (id, customer_id, status, assignee_id, channel, "
            "opened_at, last_inbound_at, last_outbound_at, closed_at, acknowledged) "
            "VALUES (?, ?, ?, ?, 'sms', ?, ?, ?, ?, FALSE)"), rows)
        messages = []
        for i in ids:
            for n in range(PER_CONVERSATION):
                message_id += 1
                inbound = n % 2 == 0
                messages.append([
                    message_id, i, i, "in" if inbound else "out",
                    f"b{message_id}" if inbound else None,
                    f"message {n} of customer {i}: where is my parcel number {i * 7}?",
                    "customer" if inbound else "manager", "received" if inbound else "sent",
                    at[i] + timedelta(seconds=n)])
        await conn.execute_many(sql.dialect_sql(
            conn, "INSERT INTO message (id, customer_id, conversation_id, direction, channel, "
            "external_id, text, attachments, meta, author_kind, delivery_status, automated, "
            "created_at) VALUES (?, ?, ?, ?, 'sms', ?, ?, '[]', '{}', ?, ?, FALSE, ?)"),
            messages)
    if sql.is_postgres(conn):
        for table in ("customer", "identity", "conversation", "message"):
            await conn.execute_script(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT MAX(id) FROM {table})); ANALYZE {table};")
    else:
        await conn.execute_script("ANALYZE;")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


async def timed(http: Any, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with http.get(url) as r:
            await r.read()
            assert r.status == 200, (url, r.status)
        out.append(time.perf_counter() - t0)
    return out


async def next_inbox(stream: Any) -> float:
    event = ""
    while True:
        line = (await stream.readline()).decode().rstrip("\r\n")
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "inbox":
            return time.perf_counter()


async def bare_servers(contexts: dict[str, Any]) -> tuple[Any, str, asyncio.Queue[str]]:
    """The baselines: the same HTML from memory, rendered per request; an SSE forwarder."""
    from aiohttp import web
    from aiohttp_sse import sse_response

    from web.console import render

    events: asyncio.Queue[str] = asyncio.Queue()

    async def inbox(_r: web.Request) -> web.Response:
        return render.page("inbox.html", "en", contexts["inbox"])

    async def page(_r: web.Request) -> web.Response:
        return render.page("customer.html", "en", contexts["page"])

    async def stream(request: web.Request) -> web.StreamResponse:
        async with sse_response(request) as resp:
            await resp.send("ready", event="ready")
            while True:
                data = await events.get()
                await resp.send(data, event="inbox")
        return resp

    app = web.Application()
    app.router.add_get("/inbox", inbox)
    app.router.add_get("/page", page)
    app.router.add_get("/events", stream)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}", events


async def run_database(name: str, url: str, conversations: int, requests: int,
                       events_n: int) -> dict[str, Any]:
    import aiohttp

    from crm import db
    from crm.app import App
    from crm.config import parse_settings
    from crm.managers import Managers
    from crm.types import Channel, InboundMessage, Role

    await db.init(url)
    await db.upgrade()
    # Manager #1: a fifth of the conversations are theirs.
    manager = await Managers().add(None, "Bench", Role.ADMIN, email="bench@example.com")
    await Managers().set_password(manager, PASSWORD)
    t0 = time.perf_counter()
    await seed(url, conversations)
    seeded = time.perf_counter() - t0
    print(f"{name}: seeded {conversations} conversations in {seeded:.1f} s", file=sys.stderr,
          flush=True)
    settings = parse_settings({"database": {"url": url}, "http": {"port": 0},
                               "logging": {"level": "WARNING"}})
    out: dict[str, Any] = {"database": name, "conversations": conversations,
                           "messages": conversations * PER_CONVERSATION,
                           "seed_seconds": round(seeded, 1)}
    async with App(settings, builtin_channels=False, manage_database=False) as app:
        assert app.core is not None
        assert app.http is not None
        core = app.core
        base = f"http://127.0.0.1:{app.http.port}"
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(f"{base}/console/sign-in") as r:
                text = await r.text()
            csrf = text.split('name="csrf" value="')[1].split('"')[0]
            async with http.post(f"{base}/console/sign-in", allow_redirects=False, data={
                    "email": "bench@example.com", "password": PASSWORD, "csrf": csrf}) as r:
                assert r.status == 303, await r.text()
            pick = random.Random(7)
            inbox_url = f"{base}/console/inbox?list=open"
            await timed(http, inbox_url, 5)  # warm
            inbox = await timed(http, inbox_url, requests)
            waiting = await timed(http, f"{base}/console/inbox?list=waiting", requests)
            pages = []
            for _ in range(requests):
                pages += await timed(http, f"{base}/console/customers/"
                                     f"{pick.randint(1, conversations)}", 1)

            # The baselines render the same templates from values kept in memory.
            from crm.inbox import InboxFilter, InboxList
            from web.console import customer as customer_view

            page = await core.queries.inbox.page(InboxList.OPEN, manager.id, InboxFilter(),
                                                 settings.console.page_size)
            common = {"me": manager, "csrf": "x", "can": {"inbox": True, "customers": True,
                                                          "team": True}}
            inbox_ctx = {**common, "which": "open", "lists": [w.value for w in InboxList],
                         "counts": {w.value: n for w, n in page.counts.items()},
                         "rows": page.rows, "more": page.more, "page_no": 0,
                         "channels": ["telegram", "email", "sms"], "channel": "", "tag": "",
                         "query": "list=open"}

            class _Visit:
                core = app.core

            page_ctx = {**common, **await customer_view._context(
                _Visit(), pick.randint(1, conversations))}  # type: ignore[arg-type]
            print(f"{name}: pages measured", file=sys.stderr, flush=True)
            runner, bare, queue = await bare_servers({"inbox": inbox_ctx, "page": page_ctx})
            try:
                await timed(http, f"{bare}/inbox", 5)
                bare_inbox = await timed(http, f"{bare}/inbox", requests)
                bare_page = await timed(http, f"{bare}/page", requests)

                print(f"{name}: baselines measured", file=sys.stderr, flush=True)
                # Ingest to event, and the bare stream's own latency.
                live, bare_live = [], []
                async with http.get(f"{base}/console/events") as stream, \
                        http.get(f"{bare}/events") as bare_stream:
                    await stream.content.readline()
                    await bare_stream.content.readline()
                    for n in range(events_n):
                        t0 = time.perf_counter()
                        got = asyncio.ensure_future(next_inbox(stream.content))
                        await core.timeline.ingest(InboundMessage(
                            Channel.SMS, f"live-{n}", f"+1303{n:07d}", text=f"live {n}"))
                        live.append(await asyncio.wait_for(got, 10) - t0)
                        t0 = time.perf_counter()
                        got = asyncio.ensure_future(next_inbox(bare_stream.content))
                        queue.put_nowait(json.dumps({"n": n}))
                        bare_live.append(await asyncio.wait_for(got, 10) - t0)
                        # Drain the rest of this change's events (customer-N) before the next.
                        await asyncio.sleep(0.02)
            finally:
                await runner.cleanup()
    await db.close()
    for label, values, base_values in (("inbox page", inbox, bare_inbox),
                                       ("waiting-on-us page", waiting, bare_inbox),
                                       ("conversation page", pages, bare_page),
                                       ("ingest to event", live, bare_live)):
        out[label] = {"p50_ms": round(pct(values, 0.5), 2), "p99_ms": round(pct(values, 0.99), 2),
                      "baseline_p50_ms": round(pct(base_values, 0.5), 2),
                      "baseline_p99_ms": round(pct(base_values, 0.99), 2),
                      "n": len(values), "mean_ms": round(statistics.mean(values) * 1000, 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="10,000 conversations, fewer requests (a short check)")
    parser.add_argument("--databases", default="sqlite",
                        help="comma-separated: sqlite, postgres (default: sqlite)")
    args = parser.parse_args()
    conversations = 10_000 if args.quick else 100_000
    requests = 100 if args.quick else 500
    events_n = 50 if args.quick else 300
    logging.disable(logging.WARNING)
    from crm import logs

    logs.setup("ERROR")
    for database in args.databases.split(","):
        with tempfile.TemporaryDirectory(prefix="crm-bench-console-") as tmp:
            if database == "postgres":
                from tests.support.postgres import start_postgres

                pg = start_postgres(durable=True)
                try:
                    result = asyncio.run(run_database(
                        "postgres", pg.url(pg.create_database()), conversations, requests,
                        events_n))
                finally:
                    pg.stop()
            else:
                result = asyncio.run(run_database(
                    "sqlite", f"sqlite://{tmp}/bench.sqlite3", conversations, requests,
                    events_n))
        print(json.dumps(result, indent=2))
        for label in ("inbox page", "waiting-on-us page", "conversation page",
                      "ingest to event"):
            r = result[label]
            goal = 500 if label == "ingest to event" else 100
            print(f"{result['database']:8} {label:20} p50 {r['p50_ms']:7.2f} ms  p99 "
                  f"{r['p99_ms']:7.2f} ms   baseline p50 {r['baseline_p50_ms']:6.2f} ms  p99 "
                  f"{r['baseline_p99_ms']:6.2f} ms   goal p99 < {goal} ms: "
                  f"{'met' if r['p99_ms'] < goal else 'MISSED'}")


if __name__ == "__main__":
    main()
