"""API throughput and latency: the real service beside a bare aiohttp handler, in one run.

    .venv/bin/python bench/api.py            # 100,000 customers; 20,000 requests per figure
    .venv/bin/python bench/api.py --quick    # 10,000 customers; 3,000 requests (a short check)
    .venv/bin/python bench/api.py --databases sqlite,postgres

For each database (an SQLite file, the default; a PostgreSQL 15 server the bench starts, with
fsync on) it stores N customers, each with an identity, a conversation and two messages, starts
the real service (`crm run`, in its own process, no channels configured) and an API key, and
measures two calls with 20 concurrent clients (aiohttp, keep-alive, in this process):

- GET /api/v1/customers/{id}: a random customer's card (identities, consent, conversations);
- GET /api/v1/conversations?limit=50: a page of 50, from a random place in the list (cursor).

Beside each, in the same run, a bare aiohttp handler in its own process returns the same JSON
bytes from memory (no auth, no database), driven by the same clients, in alternating rounds
(the machine's load drifts). It prints the median requests per second and the p99 latency of
both, and the API's share of the bare rate. Goals (issue 11): p99 under
50 ms, and at least 40% of the bare handler's rate. Both servers run one process each; the
clients share the machine with them, so the bare figure is also bounded by the client.
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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/email.py would shadow the standard library's `email` (imported by the libraries below).
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

CONCURRENCY = 20
CRM = str(Path(sys.executable).parent / "crm")


async def seed(url: str, customers: int) -> str:
    """Store the customers with plain SQL (the ORM would take minutes); returns an API key."""
    from tortoise.connection import get_connection

    from crm import db, sql
    from crm.apikeys import ApiKeys, Scope

    await db.init(url)
    await db.upgrade()
    conn = get_connection("default")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    batch = 5_000
    for low in range(1, customers + 1, batch):
        ids = range(low, min(customers, low + batch - 1) + 1)
        at = [start + timedelta(seconds=i) for i in ids]
        await conn.execute_many(sql.dialect_sql(
            conn, "INSERT INTO customer (id, name, language, tags, attributes, created_at, "
            "last_seen_at) VALUES (?, ?, 'en', ?, ?, ?, ?)"),
            [[i, f"Customer {i}", json.dumps(["vip"] if i % 10 == 0 else []),
              json.dumps({"plan": "basic"}), t, t] for i, t in zip(ids, at, strict=True)])
        await conn.execute_many(sql.dialect_sql(
            conn, "INSERT INTO identity (id, customer_id, channel, address, created_at, "
            "last_seen_at) VALUES (?, ?, 'sms', ?, ?, ?)"),
            [[i, i, f"+1202{i:07d}", t, t] for i, t in zip(ids, at, strict=True)])
        await conn.execute_many(sql.dialect_sql(
            conn, "INSERT INTO conversation (id, customer_id, status, channel, opened_at, "
            "last_inbound_at, acknowledged) VALUES (?, ?, ?, 'sms', ?, ?, FALSE)"),
            [[i, i, ("open", "waiting", "closed")[i % 3], t, t]
             for i, t in zip(ids, at, strict=True)])
        await conn.execute_many(sql.dialect_sql(
            conn, "INSERT INTO message (id, customer_id, conversation_id, direction, channel, "
            "external_id, text, attachments, meta, author_kind, delivery_status, automated, "
            "created_at) VALUES (?, ?, ?, ?, 'sms', ?, ?, '[]', '{}', ?, ?, FALSE, ?)"),
            [row for i, t in zip(ids, at, strict=True) for row in (
                [2 * i - 1, i, i, "in", f"in-{i}", "Where is my order?", "customer",
                 "received", t],
                [2 * i, i, i, "out", f"out-{i}", "On its way!", "manager", "sent", t])])
    if not sql.is_postgres(conn):
        await conn.execute_script("ANALYZE")
    else:
        for table in ("customer", "identity", "conversation", "message"):
            await conn.execute_script(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT MAX(id) FROM {table})); ANALYZE {table}")
    _row, key = await ApiKeys().create("bench", list(Scope))
    await db.close()
    return key


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def start_service(url: str, tmp: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    config = Path(tmp) / f"config-{port}.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[http]\nhost = "127.0.0.1"\nport = {port}\n'
        '[logging]\nlevel = "WARNING"\n[api]\nrate_per_minute = 1e9\nburst = 1000000\n'
        'max_page_size = 50\n')
    proc = subprocess.Popen([CRM, "run", "-c", str(config)], cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, proc)
    return proc, port


def bare_server(port: int, bodies_path: str) -> None:
    """A bare aiohttp app answering with the API's own JSON from memory."""
    from aiohttp import web

    bodies = json.loads(Path(bodies_path).read_text())
    customer, conversations = bodies["customer"].encode(), bodies["conversations"].encode()

    async def one(_request: web.Request) -> web.Response:
        return web.Response(body=customer, content_type="application/json")

    async def page(_request: web.Request) -> web.Response:
        return web.Response(body=conversations, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/customers/{id}", one)
    app.router.add_get("/api/v1/conversations", page)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def drive(base: str, key: str, paths: Callable[[random.Random], str],
                requests: int) -> tuple[float, list[float], int]:
    """`requests` calls from CONCURRENCY clients; returns (requests/s, latencies, non-200s)."""
    import aiohttp

    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    errors = 0
    remaining = requests

    async def client(session: aiohttp.ClientSession, seed: int) -> None:
        nonlocal remaining, errors
        rnd = random.Random(seed)
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            async with session.get(base + paths(rnd), headers=headers) as r:
                await r.read()
                errors += r.status != 200
            latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(2):  # warm up: connections, caches
            async with session.get(base + paths(random.Random(0)), headers=headers) as r:
                await r.read()
        start = time.perf_counter()
        await asyncio.gather(*(client(session, n) for n in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies, errors


def measure(base: str, bare: str, key: str, paths: Callable[[random.Random], str],
            requests: int, rounds: int = 4) -> tuple[float, float, float, float, int]:
    """API and bare in alternating rounds (the machine is shared: its load drifts), the median
    rate of each and the p99 over all their requests."""
    api_rates, bare_rates, api_lat, bare_lat, errors = [], [], [], [], 0
    for _ in range(rounds):
        rate, lat, err = asyncio.run(drive(base, key, paths, requests // rounds))
        api_rates.append(rate)
        api_lat += lat
        errors += err
        rate, lat, _err = asyncio.run(drive(bare, key, paths, requests // rounds))
        bare_rates.append(rate)
        bare_lat += lat

    def p99(latencies: list[float]) -> float:
        return statistics.quantiles(latencies, n=100)[98] * 1000

    return (statistics.median(api_rates), p99(api_lat), statistics.median(bare_rates),
            p99(bare_lat), errors)


async def fetch_bodies(base: str, key: str, path_customer: str, path_page: str) -> dict[str, str]:
    import aiohttp

    out = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as s:
        for name, path in (("customer", path_customer), ("conversations", path_page)):
            async with s.get(base + path) as r:
                assert r.status == 200, await r.text()
                out[name] = await r.text()
    return out


def run_database(name: str, url: str, customers: int, requests: int, tmp: str) -> None:
    from crm import pagination

    key = subprocess.run([sys.executable, __file__, "--seed", url, str(customers)],
                         capture_output=True, text=True, check=True, cwd=ROOT
                         ).stdout.strip().splitlines()[-1]
    service, port = start_service(url, tmp)
    bare_port = _free_port()
    bare = None
    try:
        base = f"http://127.0.0.1:{port}"

        def customer(rnd: random.Random) -> str:
            return f"/api/v1/customers/{rnd.randint(1, customers)}"

        def page(rnd: random.Random) -> str:
            cursor = pagination.encode("conversations", rnd.randint(51, customers + 1))
            return f"/api/v1/conversations?limit=50&cursor={cursor}"

        bodies = asyncio.run(fetch_bodies(base, key, customer(random.Random(1)),
                                          page(random.Random(1))))
        bodies_path = Path(tmp) / f"bodies-{port}.json"
        bodies_path.write_text(json.dumps(bodies))
        bare = subprocess.Popen([sys.executable, __file__, "--bare", str(bare_port),
                                 str(bodies_path)], cwd=ROOT)
        _wait_port(bare_port, bare)
        for label, paths in (("GET /customers/{id}", customer),
                             ("GET /conversations (50)", page)):
            api_rate, api_p99, bare_rate, bare_p99, api_err = measure(
                base, f"http://127.0.0.1:{bare_port}", key, paths, requests)
            ok = "ok" if api_p99 < 50 and api_rate >= 0.4 * bare_rate and not api_err \
                else "MISSED"
            print(f"{name:9} {label:24} {api_rate:8,.0f} {api_p99:8.1f} {bare_rate:9,.0f} "
                  f"{bare_p99:9.1f} {api_rate / bare_rate:6.0%}  {ok}"
                  + (f" ({api_err} errors)" if api_err else ""), flush=True)
    finally:
        for proc in (service, bare):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="10,000 customers and 3,000 requests per figure")
    parser.add_argument("--databases", default="sqlite",
                        help="comma-separated: sqlite, postgres (default: sqlite)")
    args = parser.parse_args()
    customers, requests = (10_000, 3_000) if args.quick else (100_000, 20_000)
    print(f"api: {customers:,} customers stored, {CONCURRENCY} concurrent clients, "
          f"{requests:,} requests per figure")
    print(f"{'database':9} {'call':24} {'api rps':>8} {'p99 ms':>8} {'bare rps':>9} "
          f"{'bare p99':>9} {'share':>6}  goal (p99 < 50 ms, >= 40%)")
    with tempfile.TemporaryDirectory(prefix="crm-bench-api-") as tmp:
        os.chmod(tmp, 0o755)
        for database in args.databases.split(","):
            if database == "postgres":
                from tests.support.postgres import start_postgres

                pg = start_postgres(durable=True)
                try:
                    run_database("postgres", pg.url(pg.create_database()), customers,
                                 requests, tmp)
                finally:
                    pg.stop()
            else:
                run_database("sqlite", f"sqlite://{tmp}/bench.sqlite3", customers, requests,
                             tmp)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--seed":
        logging.disable(logging.CRITICAL)
        print(asyncio.run(seed(sys.argv[2], int(sys.argv[3]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "--bare":
        bare_server(int(sys.argv[2]), sys.argv[3])
    else:
        main()
