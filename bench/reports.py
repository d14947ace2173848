"""Reports on a big database: each report beside a hand-written single SQL query for the same
figure, in the same run, on SQLite and PostgreSQL.

    .venv/bin/python bench/reports.py            # 100,000 customers, 1,000,000 messages,
                                                 # 200,000 orders
    .venv/bin/python bench/reports.py --quick    # a tenth of that
    .venv/bin/python bench/reports.py --databases sqlite

The data is synthetic and seeded (the same every run), written in bulk by the bare driver (not
measured): customers over 15 months (a third with a deep-link lead source, tags on some), an
address each, ~150,000 conversations (20 managers, three channels, surveys and ratings on
some, a few waiting now), 1,000,000 messages in them, the waits those messages make (first
response, replies, resolutions), 200,000 orders skewed so that few customers buy much, and 30
campaigns (one a fortnight, each to a fifth of the customers of its day: ~300,000 recipients,
sent, failed, skipped, deferred, delivered, replied, clicked, opted out in plausible shares).

Each report runs through `Reports.run` (what the CLI, /report and the API call) for the last
30 days (customers and cohorts: the last 365), best of 3; its baseline is one statement
written by hand for the same figures, run by the bare driver (aiosqlite or asyncpg) on the
same database, best of 3. Goal: each report under 1 s, and at most twice its baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

END = datetime(2026, 3, 31, 12, tzinfo=UTC)
START = END - timedelta(days=456)
SOURCES = ("ad_spring", "ad_summer", "instagram", "partner", "qr_store")
TAGS = ("vip", "wholesale", "b2b", "newsletter")
CHANNELS = ("telegram", "email", "sms")


def _quiet() -> None:
    logging.disable(logging.WARNING)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def dataset(customers: int, messages: int, orders: int) -> dict[str, list[tuple[Any, ...]]]:
    rnd = random.Random(16)
    span = (END - START).total_seconds()
    out: dict[str, list[tuple[Any, ...]]] = {k: [] for k in (
        "manager", "customer", "identity", "conversation", "message", "report_fact",
        "customer_order", "campaign", "campaign_recipient")}
    for m in range(1, 21):
        out["manager"].append((m, 9000 + m, f"Manager {m}", "manager", "online", 20, "[]",
                               "[]", True, START))
    created: list[datetime] = []
    for c in range(1, customers + 1):
        at = START + timedelta(seconds=span * (c - 1) / customers)
        created.append(at)
        source = rnd.choice(SOURCES) if rnd.random() < 0.33 else None
        tags = json.dumps(rnd.sample(TAGS, rnd.choice((0, 0, 0, 1, 2))))
        out["customer"].append((c, f"Customer {c}", source, tags, "{}", at))
        channel = CHANNELS[c % 3]
        out["identity"].append((c, c, channel, f"{channel}-{c}", at))
    conv_id = msg_id = fact_id = 0
    while msg_id < messages:
        conv_id += 1
        # As many conversations every day, each of a customer who existed by then.
        opened = START + timedelta(seconds=rnd.random() * span * 0.995)
        c = rnd.randrange(1, max(2, int(customers * (opened - START).total_seconds() / span)))
        manager = rnd.randrange(1, 21)
        channel = CHANNELS[c % 3]
        t = opened
        first = True
        for _ in range(rnd.randrange(1, 5)):
            msg_id += 1
            out["message"].append((msg_id, c, conv_id, "in", channel, "customer", None, t))
            wait = int(rnd.lognormvariate(6, 1.2))
            t += timedelta(seconds=wait)
            msg_id += 1
            out["message"].append((msg_id, c, conv_id, "out", channel, "manager", manager, t))
            fact_id += 1
            out["report_fact"].append((fact_id, "first_response" if first else "reply",
                                       conv_id, c, manager, channel, t - timedelta(seconds=wait),
                                       t, wait, wait))
            first = False
            t += timedelta(seconds=int(rnd.lognormvariate(7, 1)))
        open_now = t > END - timedelta(days=2) and rnd.random() < 0.5
        closed = None if open_now else t
        if closed is not None:
            fact_id += 1
            secs = int((closed - opened).total_seconds())
            out["report_fact"].append((fact_id, "resolution", conv_id, c, manager, channel,
                                       opened, closed, secs, secs))
        surveyed = closed is not None and rnd.random() < 0.4
        rating = rnd.choice((1, 2, 3, 4, 4, 5, 5, 5)) if surveyed and rnd.random() < 0.6 \
            else None
        out["conversation"].append((
            conv_id, c, "closed" if closed else "open", manager, channel, opened, closed,
            closed + timedelta(hours=1) if surveyed and closed else None, rating,
            closed + timedelta(hours=2) if rating and closed else None,
            t if open_now else None))
    for o in range(1, orders + 1):
        at = START + timedelta(seconds=rnd.random() * span)
        known = max(1, int(customers * (at - START).total_seconds() / span))
        c = 1 + int(known * rnd.random() ** 3)  # a few customers buy much
        status = "cancelled" if rnd.random() < 0.05 else rnd.choice(("paid", "delivered"))
        currency = "USD" if rnd.random() < 0.01 else "EUR"
        out["customer_order"].append((o, f"B-{o:07d}", f"B-{o:07d}", c, status, "[]",
                                      int(math.exp(rnd.gauss(8, 1))), currency, at, at, at, at))
    _campaigns(rnd, customers, out)
    return out


def _campaigns(rnd: random.Random, customers: int, out: dict[str, list[tuple[Any, ...]]]) -> None:
    span = (END - START).total_seconds()
    rid = 0
    for k in range(1, 31):
        started = START + timedelta(seconds=span * k / 31)
        known = max(1, int(customers * (started - START).total_seconds() / span))
        ab = k % 2 == 0
        latest = k == 30
        out["campaign"].append((k, f"Campaign {k}", "sending" if latest else "finished",
                                "{}", "{}", "bench", "A" if ab else None, 0, started,
                                started, started, None if latest else started))
        for c in sorted(rnd.sample(range(1, known + 1), max(1, known // 5))):
            rid += 1
            channel = CHANNELS[c % 3]
            variant = rnd.choice(("A", "B")) if ab else "A"
            roll = rnd.random()
            deferred = rnd.random() < 0.1
            sent = started + timedelta(seconds=rnd.randrange(1, 3600))
            row: dict[str, Any] = {"state": "sent", "sent_at": sent}
            if roll < 0.05:
                row = {"state": "skipped", "skip_reason": "no_consent", "channel": None}
            elif roll < 0.08:
                row = {"state": "skipped", "skip_reason": "unreachable", "channel": None}
            elif roll < 0.12:
                row = {"state": "failed", "error": "forbidden: bot was blocked",
                       "failed_at": sent}
            elif latest and roll < 0.3:
                row = {"state": "queued"}
            if row["state"] == "sent":
                if channel == "sms" and rnd.random() < 0.9:
                    row["delivered_at"] = sent + timedelta(seconds=5)
                if rnd.random() < 0.03:
                    row["replied_at"] = sent + timedelta(hours=2)
                if rnd.random() < 0.08:
                    row["clicked_at"] = sent + timedelta(minutes=10)
                if rnd.random() < 0.01:
                    row["opted_out_at"] = sent + timedelta(hours=1)
            out["campaign_recipient"].append((
                rid, k, c, variant, row.get("channel", channel), row["state"],
                row.get("skip_reason"), row.get("error"), deferred, row.get("sent_at"),
                row.get("delivered_at"), row.get("failed_at"), row.get("replied_at"),
                row.get("clicked_at"), row.get("opted_out_at")))


COLUMNS = {
    "manager": ("id", "telegram_user_id", "name", "role", "availability", "capacity",
                "channels", "tags", "active", "created_at"),
    "customer": ("id", "name", "lead_source", "tags", "attributes", "created_at"),
    "identity": ("id", "customer_id", "channel", "address", "created_at"),
    "conversation": ("id", "customer_id", "status", "assignee_id", "channel", "opened_at",
                     "closed_at", "survey_sent_at", "rating", "rated_at", "waiting_since"),
    "message": ("id", "customer_id", "conversation_id", "direction", "channel", "author_kind",
                "author_id", "created_at"),
    "report_fact": ("id", "kind", "conversation_id", "customer_id", "manager_id", "channel",
                    "started_at", "ended_at", "seconds", "business_seconds"),
    "customer_order": ("id", "number", "number_key", "customer_id", "status", "items",
                       "amount_minor", "currency", "placed_at", "status_changed_at",
                       "created_at", "updated_at"),
    "campaign": ("id", "name", "state", "spec", "segment_filters", "actor", "winner",
                 "recipients_total", "created_at", "start_at", "started_at", "finished_at"),
    "campaign_recipient": ("id", "campaign_id", "customer_id", "variant", "channel", "state",
                           "skip_reason", "error", "deferred", "sent_at", "delivered_at",
                           "failed_at", "replied_at", "clicked_at", "opted_out_at"),
}
# Columns without a database default that the ORM fills in.
FILLED = {"conversation": {"acknowledged": False},
          "message": {"text": "", "attachments": "[]", "meta": "{}", "delivery_status": "sent",
                      "automated": False}}


async def fill(url: str, data: dict[str, list[tuple[Any, ...]]]) -> None:
    from crm import db

    await db.init(url)
    await db.upgrade()
    await db.close()
    tables = list(COLUMNS)
    if url.startswith("sqlite"):
        import aiosqlite

        async with aiosqlite.connect(url.removeprefix("sqlite://").split("?")[0]) as conn:
            for table in tables:
                cols = (*COLUMNS[table], *FILLED.get(table, {}))
                extra = tuple(FILLED.get(table, {}).values())
                sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                       f"({', '.join('?' * len(cols))})")
                rows = data[table]
                for s in range(0, len(rows), 50_000):
                    await conn.executemany(sql, [tuple(
                        v.isoformat(" ") if isinstance(v, datetime) else v for v in r) + extra
                        for r in rows[s:s + 50_000]])
                await conn.commit()
            await conn.execute("ANALYZE")
            await conn.commit()
        return
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    for table in tables:
        cols = (*COLUMNS[table], *FILLED.get(table, {}))
        extra = tuple(FILLED.get(table, {}).values())
        await conn.copy_records_to_table(table, records=[r + extra for r in data[table]],
                                         columns=list(cols))
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT MAX(id) FROM {table}))")
    await conn.execute("ANALYZE")
    await conn.close()


def baselines(pg: bool) -> dict[str, str]:
    """One hand-written statement per report, computing the same figures."""
    def epoch(col: str) -> str:
        return f"EXTRACT(EPOCH FROM {col})" if pg else f"CAST(strftime('%s', {col}) AS INTEGER)"

    def waits(g: str) -> str:
        return f"""
        WITH f AS (SELECT {g} AS g, kind, seconds AS s, business_seconds AS b,
                   CASE WHEN ended_at >= :start THEN 1 ELSE 0 END AS cur
                   FROM report_fact WHERE ended_at >= :prev AND ended_at < :end),
        r AS (SELECT g, kind, cur, s, b,
              ROW_NUMBER() OVER (PARTITION BY g, kind, cur ORDER BY s) AS rs,
              ROW_NUMBER() OVER (PARTITION BY g, kind, cur ORDER BY b) AS rb,
              COUNT(*) OVER (PARTITION BY g, kind, cur) AS n FROM f)
        SELECT g, kind, cur, COUNT(*), AVG(s), AVG(b),
          SUM(CASE WHEN rs = (n - 1) / 2 + 1 THEN s END),
          SUM(CASE WHEN rs = (n - 1) * 9 / 10 + 1 THEN s END),
          SUM(CASE WHEN rb = (n - 1) / 2 + 1 THEN b END),
          SUM(CASE WHEN rb = (n - 1) * 9 / 10 + 1 THEN b END),
          SUM(CASE WHEN b <= 900 THEN 1 ELSE 0 END),
          (SELECT COUNT(*) FROM conversation WHERE opened_at >= :prev AND opened_at < :end),
          (SELECT COUNT(rating) FROM conversation WHERE survey_sent_at >= :prev
           AND survey_sent_at < :end),
          (SELECT COUNT(*) FROM conversation WHERE status IN ('open', 'waiting')
           AND waiting_since IS NOT NULL)
        FROM r GROUP BY g, kind, cur"""

    return {
        "overview": waits("''"),
        "team": waits("manager_id"),
        "channels": waits("channel"),
        "csat": """SELECT assignee_id, CASE WHEN survey_sent_at >= :start THEN 1 ELSE 0 END,
                   COUNT(*), COUNT(rating), SUM(CASE WHEN rating >= 4 THEN 1 ELSE 0 END)
                   FROM conversation WHERE survey_sent_at >= :prev AND survey_sent_at < :end
                   GROUP BY 1, 2""",
        "hours": f"""SELECT ({epoch("created_at")} / 3600) AS h, COUNT(*) FROM message
                    WHERE direction = 'in' AND created_at >= :start AND created_at < :end
                    GROUP BY 1""",
        "sources": """WITH c AS (SELECT id, COALESCE(lead_source, (SELECT channel FROM identity
                      WHERE customer_id = customer.id ORDER BY id LIMIT 1)) AS src FROM customer
                      WHERE created_at >= :start AND created_at < :end),
                   o AS (SELECT customer_id, COUNT(*) AS n, SUM(amount_minor) AS rev
                      FROM customer_order WHERE status <> 'cancelled' AND currency = 'EUR'
                      AND customer_id IN (SELECT id FROM c) GROUP BY customer_id)
                   SELECT c.src, COUNT(*), SUM(CASE WHEN EXISTS (SELECT 1 FROM report_fact f
                      WHERE f.customer_id = c.id AND f.kind IN ('first_response', 'reply'))
                      THEN 1 ELSE 0 END), COUNT(o.n), SUM(CASE WHEN o.n >= 2 THEN 1 ELSE 0 END),
                      SUM(o.rev)
                   FROM c LEFT JOIN o ON o.customer_id = c.id GROUP BY c.src""",
        "customers": """WITH c AS (SELECT customer_id AS id, MAX(placed_at) AS last_at,
                      COUNT(*) AS n, SUM(CASE WHEN currency = 'EUR' THEN amount_minor ELSE 0 END)
                      AS rev FROM customer_order WHERE status <> 'cancelled'
                      AND placed_at >= :ystart AND placed_at < :end GROUP BY customer_id),
                   r AS (SELECT rev, SUM(rev) OVER (ORDER BY rev DESC, id ROWS UNBOUNDED
                      PRECEDING) AS cum, ROW_NUMBER() OVER (ORDER BY rev DESC, id) AS rn,
                      SUM(rev) OVER () AS total, COUNT(*) OVER () AS cnt,
                      1 + (RANK() OVER (ORDER BY last_at) - 1) * 5 / COUNT(*) OVER () AS rs,
                      1 + (RANK() OVER (ORDER BY n) - 1) * 5 / COUNT(*) OVER () AS fs FROM c)
                   SELECT rs, fs, COUNT(*), SUM(rev), MIN(CASE WHEN cum * 5 >= total * 4
                      THEN rn END), MAX(cnt), (rn * 100 + cnt - 1) / cnt AS pct, MAX(cum)
                   FROM r GROUP BY rs, fs, pct""",
        "cohorts": f"""WITH o AS (SELECT customer_id AS id, {"to_char(placed_at, 'YYYY-MM')"
                      if pg else "strftime('%Y-%m', placed_at)"} AS m FROM customer_order
                      WHERE status <> 'cancelled'),
                   f AS (SELECT id, MIN(m) AS c FROM o GROUP BY id)
                   SELECT f.c, o.m, COUNT(DISTINCT o.id) FROM f JOIN o ON o.id = f.id
                   WHERE f.c >= :ymonth GROUP BY f.c, o.m""",
        "campaigns": """SELECT r.campaign_id, r.channel, r.variant, r.state, r.skip_reason,
                      COUNT(*), SUM(CASE WHEN r.deferred THEN 1 ELSE 0 END),
                      COUNT(r.delivered_at), COUNT(r.replied_at), COUNT(r.clicked_at),
                      COUNT(r.opted_out_at)
                   FROM campaign c JOIN campaign_recipient r ON r.campaign_id = c.id
                   WHERE c.started_at >= :start AND c.started_at < :end
                   GROUP BY 1, 2, 3, 4, 5""",
    }


async def time_raw(url: str, sql: str, params: dict[str, Any]) -> float:
    names = sorted(params, key=len, reverse=True)
    best = math.inf
    if url.startswith("sqlite"):
        import aiosqlite

        async with aiosqlite.connect(url.removeprefix("sqlite://").split("?")[0]) as conn:
            values = {k: v.isoformat(" ") if isinstance(v, datetime) else v
                      for k, v in params.items()}
            for _ in range(3):
                t0 = time.perf_counter()
                async with conn.execute(sql, values) as cur:
                    await cur.fetchall()
                best = min(best, time.perf_counter() - t0)
        return best
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    order: list[str] = []
    text = sql
    for name in names:
        if f":{name}" in text:
            order.append(name)
            text = text.replace(f":{name}", f"${len(order)}")
    for _ in range(3):
        t0 = time.perf_counter()
        await conn.fetch(text, *[params[n] for n in order])
        best = min(best, time.perf_counter() - t0)
    await conn.close()
    return best


async def run(url: str, quick: bool) -> dict[str, list[float]]:
    from zoneinfo import ZoneInfo

    from crm import db
    from crm.config import parse_settings
    from crm.reports.period import Period
    from crm.reports.reports import ReportName, Reports

    scale = 10 if quick else 1
    await fill(url, dataset(100_000 // scale, 1_000_000 // scale, 200_000 // scale))
    await db.init(url)
    reports = Reports(parse_settings({"database": {"url": url}}), clock=lambda: END)
    utc = ZoneInfo("UTC")
    month = Period(END - timedelta(days=30), END, utc)
    year = Period(END - timedelta(days=365), END, utc)
    out: dict[str, list[float]] = {}
    pg = not url.startswith("sqlite")
    params = {"start": month.start, "prev": month.previous.start, "end": END,
              "ystart": year.start, "ymonth": year.start.strftime("%Y-%m")}
    for name, sql in baselines(pg).items():
        period = year if ReportName(name) in (ReportName.CUSTOMERS, ReportName.COHORTS) \
            else month
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            await reports.run(ReportName(name), period)
            best = min(best, time.perf_counter() - t0)
        wanted = {k: v for k, v in params.items() if f":{k}" in sql}
        out[name] = [best, await time_raw(url, sql, wanted)]
    await db.close()
    return out


def measure(url: str, quick: bool) -> dict[str, list[float]]:
    done = subprocess.run([sys.executable, __file__, "--child", url] + (["--quick"] if quick
                                                                        else []),
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _quiet()
        print(json.dumps(asyncio.run(run(args.child, args.quick))))
        return
    scale = 10 if args.quick else 1
    print(f"reports: {100_000 // scale:,} customers, {1_000_000 // scale:,} messages, "
          f"{200_000 // scale:,} orders; the last 30 days (customers, cohorts: 365)")
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        os.chmod(tmp, 0o755)
        pg = None
        try:
            for database in args.databases.split(","):
                if database == "postgres":
                    from tests.support.postgres import start_postgres

                    pg = start_postgres(durable=True)
                    url = str(pg.url(pg.create_database()))
                else:
                    url = f"sqlite://{tmp}/reports.sqlite3"
                t0 = time.perf_counter()
                results = measure(url, args.quick)
                took = time.perf_counter() - t0
                print(f"{database}: (data written and measured in {took:.0f} s)")
                for name, (report, base) in results.items():
                    ok = report < 1 and report <= 2 * base
                    print(f"  {name:10} report {report * 1000:7.1f} ms   one hand-written "
                          f"statement {base * 1000:7.1f} ms   {report / base:4.1f}x   "
                          f"{'ok' if ok else 'MISSED (goal < 1 s and <= 2x)'}", flush=True)
        finally:
            if pg is not None:
                pg.stop()


if __name__ == "__main__":
    main()
