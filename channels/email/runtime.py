"""The running email channel: the mailbox reader and the SMTP sender, with one health."""

from __future__ import annotations

from channels.email.reader import ImapReader
from channels.email.sender import SmtpSender
from crm.ports import ChannelHealth, Sender
from crm.types import Channel


class EmailRuntime:
    """ChannelRuntime (crm/ports.py) of the email channel."""

    channel = Channel.EMAIL

    def __init__(self, reader: ImapReader, sender: SmtpSender) -> None:
        self.reader = reader
        self.smtp = sender

    @property
    def sender(self) -> Sender:
        return self.smtp

    async def start(self) -> None:
        await self.reader.start()

    async def stop(self) -> None:
        await self.reader.stop()
        await self.smtp.close()

    def health(self) -> ChannelHealth:
        inbound = self.reader.health()
        if self.smtp.last_error:
            detail = f"{inbound.detail}; sending: {self.smtp.last_error}".lstrip("; ")
            return ChannelHealth("down", detail)
        return inbound
