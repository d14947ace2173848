"""Live updates over server-sent events: from the bus, and on PostgreSQL from another process on
the same database (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from crm.types import Channel, InboundMessage
from tests.conftest import DB_KIND, make_settings
from tests.web.console.conftest import Console, running


async def _next_event(stream: aiohttp.StreamReader, name: str) -> Any:
    event = ""
    while True:
        line = (await stream.readline()).decode().rstrip("\r\n")
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == name:
            data = line.split(":", 1)[1].strip()
            return data if name == "ready" else json.loads(data)


async def test_events_reach_the_stream_of_another_app_on_the_same_database(
        db: str, console: Console) -> None:
    """Two services on one database, as two `crm run` processes would be. On PostgreSQL the
    one that did not ingest the message hears it (NOTIFY); SQLite is one process, where the
    service that ingests is the one whose screens update."""
    ann = await console.staff("Ann")
    async with running(make_settings(db)) as other:
        watcher = other if DB_KIND == "postgres" else console
        browser = await watcher.signed_in(ann)
        async with browser.http.get(f"{watcher.base}/console/events") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
            await asyncio.wait_for(_next_event(r.content, "ready"), 10)
            result = await console.core.timeline.ingest(InboundMessage(
                Channel.SMS, "live-1", "+12025550301", text="are you there?"))
            inbox = await asyncio.wait_for(_next_event(r.content, "inbox"), 10)
            page = await asyncio.wait_for(_next_event(
                r.content, f"customer-{result.customer_id}"), 10)
    assert inbox["customer_id"] == page["customer_id"] == result.customer_id
    assert inbox["kind"] == "message" and inbox["status"] == "in"
    if DB_KIND == "postgres":
        assert other.app.live is not None and other.app.live.listening.is_set()
