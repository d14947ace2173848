"""The running web chat: its sender, and the hub of the visitors' open event streams."""

from __future__ import annotations

from channels.webchat.hub import Hub
from channels.webchat.sender import WebchatSender
from crm.ports import ChannelHealth
from crm.types import Channel


class WebchatRuntime:
    channel = Channel.WEBCHAT

    def __init__(self, sender: WebchatSender, hub: Hub) -> None:
        self._sender = sender
        self.hub = hub

    @property
    def sender(self) -> WebchatSender:
        return self._sender

    async def start(self) -> None:
        await self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()

    def health(self) -> ChannelHealth:
        if not self.hub.running:
            return ChannelHealth("down", "not started")
        return ChannelHealth("up", f"{self.hub.streams} open chat(s)")
