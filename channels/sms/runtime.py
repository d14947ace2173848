"""The running SMS channel: its sender (Kannel or Twilio), its HTTP client, its health."""

from __future__ import annotations

from channels.sms.kannel import KannelSender
from channels.sms.session import HttpSession
from channels.sms.twilio import TwilioSender
from crm.ports import ChannelHealth
from crm.types import Channel


class SmsRuntime:
    channel = Channel.SMS

    def __init__(self, sender: KannelSender | TwilioSender, http: HttpSession) -> None:
        self._sender = sender
        self._http = http
        self._started = False

    @property
    def sender(self) -> KannelSender | TwilioSender:
        return self._sender

    async def start(self) -> None:
        self._http.get()
        self._started = True

    async def stop(self) -> None:
        self._started = False
        await self._http.close()

    def health(self) -> ChannelHealth:
        if not self._started:
            return ChannelHealth("down", "not started")
        if self._sender.problem:
            return ChannelHealth("down", self._sender.problem)
        return ChannelHealth("up")
