"""A test channel that really leaves the process: each send is an HTTP POST to a receiver.

Used to prove delivery guarantees across a killed and restarted `crm` process: the receiver (in
the test process) sees exactly what was sent, and can hold a request to keep a send in flight.
"""

from __future__ import annotations

import os

import aiohttp
from aiohttp import web

from crm.ports import ChannelHealth, RateLimits
from crm.services import Core
from crm.types import Channel, DeliveryResult, OutboundMessage


class HttpSender:
    channel = Channel.TEST
    limits = RateLimits(per_second=200)

    def __init__(self, url: str) -> None:
        self.url = url
        self.session: aiohttp.ClientSession | None = None

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        try:
            async with self.session.post(self.url, json={
                "outbox_id": message.outbox_id, "address": message.address,
                "text": message.text}) as response:
                if response.status == 200:
                    return DeliveryResult.sent(f"http-{message.outbox_id}")
                return DeliveryResult.retry(f"HTTP {response.status}")
        except aiohttp.ClientError as e:
            return DeliveryResult.retry(f"connection: {e}")


class HttpRuntime:
    channel = Channel.TEST

    def __init__(self, url: str) -> None:
        self._sender = HttpSender(url)

    @property
    def sender(self) -> HttpSender:
        return self._sender

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._sender.session is not None:
            await self._sender.session.close()

    def health(self) -> ChannelHealth:
        return ChannelHealth("up")


def build(core: Core, web_app: web.Application) -> HttpRuntime:
    return HttpRuntime(os.environ["CRM_TEST_RECEIVER"])
