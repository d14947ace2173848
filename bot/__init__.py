"""The bot: the customer dialogue (every channel) and the managers' chat (Telegram).

The composition root installs `Dialogue(core)` as the core's inbox, so what arrives on any
channel goes through the one customer dialogue (bot/customer.py). `attach(core, runtime)` is
called once the Telegram channel is built: it subscribes the managers' chat mirror to the core's
events and gives the channel the handler that tells the team from customers.
"""

from __future__ import annotations

import structlog

from bot.customer import Dialogue
from bot.desk import Desk
from bot.mirror import Mirror
from channels.telegram import TelegramRuntime
from channels.telegram.normalize import Incoming
from crm.services import Core

__all__ = ["Dialogue", "Router", "attach"]

log = structlog.get_logger(__name__)


class Router:
    """Which part of the bot a Telegram update is for: the team's group, a manager, a customer."""

    def __init__(self, core: Core, desk: Desk) -> None:
        self.core = core
        self.desk = desk

    async def __call__(self, incoming: Incoming) -> None:
        if incoming.chat == "team":
            if incoming.staff is not None:  # new messages and managers' edits alike
                await self.desk.in_group(incoming.staff)
            return
        staff, customer = incoming.staff, incoming.customer
        if staff is not None:  # a message (or an edit) in a private chat: maybe a manager's
            manager = await self.core.managers.by_telegram(staff.user_id)
            if manager is not None:
                await self.desk.in_private(manager, staff)
                return
        if customer is not None:  # a non-manager writing the bot privately is a customer
            await self.core.inbox.receive(customer)


def attach(core: Core, runtime: TelegramRuntime) -> Router:
    mirror = Mirror(core, runtime)
    mirror.install()
    router = Router(core, Desk(core, runtime, mirror))
    runtime.add_handler(router)
    log.info("bot.attached", managers_chat=core.settings.telegram.managers_chat_id)
    return router
