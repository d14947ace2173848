"""/healthz and /metrics over real HTTP, with the whole service running in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio
from aiohttp import web

from crm.app import App
from crm.config import Settings
from crm.events import DeliveryChanged
from crm.ports import ChannelHealth
from crm.services import Core
from crm.types import Channel, InboundMessage
from tests.support.fake_channel import FakeRuntime, FakeSender


@pytest_asyncio.fixture
async def service(settings: Settings) -> AsyncIterator[tuple[App, FakeRuntime, str]]:
    runtime = FakeRuntime(FakeSender())

    def build(core: Core, web_app: web.Application) -> FakeRuntime:
        return runtime

    async with App(settings, extra_channels=[build], manage_database=False) as app:
        assert app.http is not None
        yield app, runtime, f"http://127.0.0.1:{app.http.port}"


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def test_healthz_reports_database_and_channels(
        service: tuple[App, FakeRuntime, str]) -> None:
    _app, runtime, base = service
    async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as r:
        assert r.status == 200
        body = await r.json()
    assert body["status"] == "ok" and body["database"]["state"] == "up"
    assert body["channels"]["test"]["state"] == "up"
    assert body["channels"]["email"] == {
        "state": "off", "detail": "not configured: fill in [email] in the config file"}

    runtime.health = lambda: ChannelHealth("down", "IMAP login failed")  # type: ignore[method-assign]
    async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as r:
        assert r.status == 503
        body = await r.json()
    assert body["channels"]["test"] == {"state": "down", "detail": "IMAP login failed"}


async def test_metrics_count_messages_and_outbox(service: tuple[App, FakeRuntime, str]) -> None:
    app, _runtime, base = service
    assert app.core is not None
    for n in range(3):
        await app.core.timeline.ingest(InboundMessage(Channel.TEST, f"m{n}", "7", text="hi"))
    result = await app.core.timeline.ingest(InboundMessage(Channel.TEST, "m9", "8", text="x"))
    sent = asyncio.Event()

    async def on_delivery(_event: DeliveryChanged) -> None:
        sent.set()

    app.core.bus.subscribe(DeliveryChanged, on_delivery)
    await app.core.conversations.send(result.customer_id, "answer")
    await asyncio.wait_for(sent.wait(), 15)
    status, text = await get(f"{base}/metrics")
    assert status == 200
    assert 'crm_messages_in_total{channel="test"}' in text
    line = next(x for x in text.splitlines() if x.startswith('crm_messages_in_total{channel="test"}'))
    assert float(line.split()[-1]) >= 4
    assert 'crm_messages_out_total{channel="test"}' in text
    assert "crm_outbox_depth" in text and "crm_outbox_oldest_age_seconds" in text

