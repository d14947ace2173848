"""A core with fake senders for the three customer channels, a travel clock, and helpers to
make customers, segments and campaigns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from tortoise.connection import get_connection

from crm import sql
from crm.config import Settings
from crm.events import TeamNotice
from crm.models import Customer, Identity, Manager, Outbox
from crm.services import Core
from crm.types import Channel, Role
from tests.conftest import make_settings
from tests.support.clock import TravelClock
from tests.support.fake_channel import FakeSender
from tests.support.telegram_fixtures import service, telegram_server, tg

__all__ = ["service", "telegram_server", "tg"]


@dataclass
class World:
    core: Core
    clock: TravelClock
    senders: dict[Channel, FakeSender]
    notices: list[TeamNotice]

    async def tick(self) -> int:
        return await self.core.campaigns.engine.tick()

    async def start(self) -> None:
        await self.core.dispatcher.start(single_process=True)

    async def stop(self) -> None:
        await self.core.dispatcher.stop()

    async def settled(self, timeout: float = 15) -> None:
        """Every outbox row has its outcome recorded (none queued or being sent)."""
        async def done() -> None:
            while await Outbox.filter(state__in=["queued", "sending"]).exists():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(done(), timeout)


def campaign_settings(db: str, **sections: Any) -> Settings:
    campaigns = {"missed_after": "30m", "quiet_hours": "", "tick_seconds": 60,
                 **sections.pop("campaigns", {})}
    return make_settings(db, campaigns=campaigns, **sections)


@pytest_asyncio.fixture
async def world(db: str) -> AsyncIterator[World]:
    clock = TravelClock()
    core = Core.build(campaign_settings(db), clock)
    senders = {c: FakeSender(channel=c) for c in (Channel.TELEGRAM, Channel.EMAIL, Channel.SMS)}
    for sender in senders.values():
        core.dispatcher.register(sender)
    notices: list[TeamNotice] = []

    async def seen(event: TeamNotice) -> None:
        notices.append(event)

    core.bus.subscribe(TeamNotice, seen)
    world = World(core, clock, senders, notices)
    yield world
    if core.dispatcher._running:
        await world.stop()


async def person(name: str, *, timezone: str | None = None, language: str = "en",
                 tags: tuple[str, ...] = ("club",), **addresses: str) -> int:
    customer = await Customer.create(name=name, timezone=timezone, language=language,
                                     tags=list(tags))
    for channel, address in addresses.items():
        await Identity.create(customer_id=customer.id, channel=Channel(channel),
                              address=address)
    return customer.id


async def many(count: int, channel: Channel, first: int, tags: tuple[str, ...] = ("club",),
               name: str = "Bulk") -> list[int]:
    """`count` customers at once, each with an address on `channel`: Telegram ids from
    `first`, or numbers +1 202 55x xxxx."""
    conn = get_connection("default")
    now = datetime.now(UTC)
    marker = f"{name}-{first}-"
    await conn.execute_many(sql.dialect_sql(
        conn, "INSERT INTO customer (name, tags, attributes, created_at) VALUES (?, ?, ?, ?)"),
        [[f"{marker}{n}", json.dumps(list(tags)), "{}", now] for n in range(count)])
    rows = await sql.fetch(conn, "SELECT id FROM customer WHERE name LIKE ? ORDER BY id",
                           [f"{marker}%"])
    ids = [int(r["id"]) for r in rows]

    def address(n: int) -> str:
        return str(first + n) if channel is Channel.TELEGRAM else f"+1202{first + n:07d}"

    await conn.execute_many(sql.dialect_sql(
        conn, "INSERT INTO identity (customer_id, channel, address, created_at) "
              "VALUES (?, ?, ?, ?)"),
        [[cid, channel.value, address(n), now] for n, cid in enumerate(ids)])
    return ids


async def marketer(user_id: int = 777, role: Role = Role.MARKETER) -> Manager:
    return await Manager.create(telegram_user_id=user_id, name="Mia", role=role)


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Spring sale", "segment": "club", "channels": ["telegram", "email", "sms"],
        "telegram": {"text": "<b>Hi {{ customer.first_name }}</b> https://shop.example/sale"},
        "email": {"subject": "Spring sale, {{ customer.first_name }}",
                  "text": "Hi {{ customer.first_name }}: https://shop.example/sale"},
        "sms": {"text": "Hi {{ customer.first_name }}, sale today"}}
    if "variants" in overrides:
        for channel in ("telegram", "email", "sms"):
            base.pop(channel)
    base.update(overrides)
    return base


async def make_campaign(core: Core, *, filters: dict[str, Any] | None = None,
                        by: Manager | None = None, **overrides: Any) -> int:
    try:
        await core.segments.get("club")
    except Exception:
        await core.segments.create("club", filters or {"tag": "club"})
    campaign = await core.campaigns.create(spec(**overrides), actor="test", by=by)
    return campaign.id
