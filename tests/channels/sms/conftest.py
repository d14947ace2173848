"""Fixtures of the SMS tests: the service on Kannel (tests/channels/conftest.py starts it, with
the test as SMSC) or on a Twilio double."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pytest_asyncio

from crm.app import App
from crm.events import DeliveryChanged, MessageReceived
from crm.models import Identity, Message
from crm.types import DeliveryStatus
from tests.conftest import make_settings
from tests.support import procs
from tests.support.kannel import INBOUND_TOKEN, PASSWORD, USERNAME, FakeSmsc, KannelServer
from tests.support.telegram_double import TelegramDouble, telegram_settings
from tests.support.twilio_double import TwilioDouble

TOKEN = INBOUND_TOKEN
OUR_NUMBER = "+15550100"
_numbers = itertools.count(100)


@pytest.fixture
def phone() -> Callable[[], str]:
    """New customer numbers for each test (Kannel and its SMSC are shared by the session)."""
    return lambda: f"+1202555{next(_numbers):04d}"










class Events:
    """What the core announced after commit, to await instead of polling."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.changed = asyncio.Condition()

    async def on(self, event: Any) -> None:
        async with self.changed:
            self.seen.append(event)
            self.changed.notify_all()

    async def wait(self, predicate: Callable[[Any], bool], timeout: float = 20) -> Any:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(
                lambda: any(predicate(e) for e in self.seen)), timeout)
        return next(e for e in self.seen if predicate(e))

    async def grown(self, size: int, timeout: float = 20) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.seen) > size),
                                   timeout)

    async def inbound_from(self, number: str, text: str) -> Message:
        """The timeline entry of the SMS `text` from `number`, once it was committed."""
        index = 0
        while True:
            await self.grown(index)
            event, index = self.seen[index], index + 1
            if isinstance(event, MessageReceived):
                message = await Message.get(id=event.message_id)
                identity = await Identity.get(id=message.identity_id)
                if identity.address == number and message.text == text:
                    return message

    async def received(self, customer_id: int | None = None, **match: Any) -> MessageReceived:
        event: MessageReceived = await self.wait(lambda e: isinstance(e, MessageReceived) and (
            customer_id is None or e.customer_id == customer_id) and all(
            getattr(e, k) == v for k, v in match.items()))
        return event

    async def delivery(self, message_id: int, status: DeliveryStatus) -> DeliveryChanged:
        event: DeliveryChanged = await self.wait(
            lambda e: isinstance(e, DeliveryChanged) and e.message_id == message_id
            and e.status is status)
        return event


def kannel_settings(db: str, server: KannelServer, password: str = PASSWORD, *,
                    sections: dict[str, dict[str, Any]] | None = None, **sms: Any) -> Any:
    """`sections`: more of the config (the managers' chat: `{"telegram": …}`)."""
    return make_settings(
        db, http={"port": server.crm_port, "public_url": f"http://127.0.0.1:{server.crm_port}"},
        sms={"provider": "kannel", "inbound_token": TOKEN, "max_segments": 4,
             "rate_per_second": 50,
             "kannel": {"sendsms_url": server.sendsms_url, "username": USERNAME,
                        "password": password, "sender": OUR_NUMBER}, **sms},
        bot={"company_name": "Acme"}, **(sections or {}))


@asynccontextmanager
async def serving(settings: Any) -> AsyncIterator[tuple[App, Events]]:
    """The whole service (with Telegram too when the settings have it)."""
    events = Events()
    async with App(settings, manage_database=False) as app:
        assert app.core is not None
        app.core.bus.subscribe(MessageReceived, events.on)
        app.core.bus.subscribe(DeliveryChanged, events.on)
        yield app, events


async def running(settings: Any) -> AsyncIterator[tuple[App, Events]]:
    async with serving(settings) as pair:
        yield pair


@pytest_asyncio.fixture
async def kannel_app(db: str, kannel: KannelServer, smsc: FakeSmsc
                     ) -> AsyncIterator[tuple[App, Events]]:
    async for pair in running(kannel_settings(db, kannel)):
        yield pair


@pytest_asyncio.fixture
async def twilio() -> AsyncIterator[TwilioDouble]:
    double = TwilioDouble()
    await double.start()
    yield double
    await double.stop()


def twilio_settings(db: str, twilio: TwilioDouble, *,
                    sections: dict[str, dict[str, Any]] | None = None, **sender: str) -> Any:
    """`sender`: from_number (OUR_NUMBER unless given) or messaging_service_sid; `sections`:
    more of the config (the managers' chat: `{"telegram": …}`)."""
    port = procs.free_port()
    return make_settings(
        db, http={"port": port, "public_url": f"http://127.0.0.1:{port}"},
        sms={"provider": "twilio", "inbound_token": TOKEN, "max_segments": 4,
             "twilio": {"account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
                        "api_base_url": twilio.base_url,
                        **(sender or {"from_number": OUR_NUMBER})}},
        bot={"company_name": "Acme"}, **(sections or {}))


@pytest_asyncio.fixture
async def twilio_app(db: str, twilio: TwilioDouble) -> AsyncIterator[tuple[App, Events]]:
    async for pair in running(twilio_settings(db, twilio)):
        yield pair


@pytest_asyncio.fixture
async def twilio_desk(db: str, twilio: TwilioDouble, tg: TelegramDouble
                      ) -> AsyncIterator[tuple[App, Events]]:
    """The service on the Twilio double, with the managers' chat on the Bot API double."""
    async with serving(twilio_settings(db, twilio, sections={
            "telegram": telegram_settings(tg)})) as pair:
        yield pair


@pytest_asyncio.fixture
async def kannel_desk(db: str, kannel: KannelServer, smsc: FakeSmsc, tg: TelegramDouble
                      ) -> AsyncIterator[tuple[App, Events]]:
    """The service on Kannel, with the managers' chat on the Bot API double."""
    async with serving(kannel_settings(db, kannel, sections={
            "telegram": telegram_settings(tg)})) as pair:
        yield pair
