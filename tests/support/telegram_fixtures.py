"""Fixtures for tests of the Telegram channel and the bot: the double, and the service on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest_asyncio

from crm.app import App, _telegram
from crm.models import Manager
from crm.types import Availability
from tests.conftest import make_settings
from tests.support.telegram_double import TelegramDouble, telegram_settings, user


@pytest_asyncio.fixture(scope="session")
async def telegram_server() -> AsyncIterator[TelegramDouble]:
    double = await TelegramDouble().start()
    yield double
    await double.stop()


@pytest_asyncio.fixture
async def tg(telegram_server: TelegramDouble, db: str) -> AsyncIterator[TelegramDouble]:
    telegram_server.reset()
    yield telegram_server
    telegram_server.reset()


ServiceFactory = Callable[..., Any]


@pytest_asyncio.fixture
async def service(tg: TelegramDouble, db: str) -> ServiceFactory:
    """`async with service(**telegram_overrides, sections={...}) as app:` runs the whole CRM."""

    @asynccontextmanager
    async def run(sections: dict[str, dict[str, Any]] | None = None,
                  **overrides: Any) -> AsyncIterator[App]:
        settings = make_settings(db, telegram=telegram_settings(tg, **overrides),
                                 **(sections or {}))
        async with App(settings, extra_channels=[_telegram], builtin_channels=False,
                       manage_database=False) as app:
            yield app

    return run


async def add_manager(user_id: int, name: str, username: str | None = None,
                      online: bool = False) -> tuple[Manager, dict[str, Any]]:
    manager = await Manager.create(
        telegram_user_id=user_id, name=name, username=username,
        availability=Availability.ONLINE if online else Availability.AWAY)
    return manager, user(user_id, name, username=username)
