"""The bot: the customer menu and the managers' chat, on top of the Telegram channel.

`attach(core, runtime)` is called by the composition root once the Telegram channel is built:
it subscribes the managers' chat mirror to the core's events and gives the channel the update
handler that tells customers from managers.
"""

from __future__ import annotations

import structlog
from telegram import Update

from bot.customer import CustomerBot
from bot.desk import Desk
from bot.mirror import Mirror
from channels.telegram import TelegramRuntime
from crm.services import Core

log = structlog.get_logger(__name__)


class Router:
    """Which part of the bot an update is for: the team's group, a manager, or a customer."""

    def __init__(self, core: Core, customers: CustomerBot, desk: Desk) -> None:
        self.core = core
        self.customers = customers
        self.desk = desk
        self.group = core.settings.telegram.managers_chat_id

    async def __call__(self, update: Update) -> None:
        chat = update.effective_chat
        if update.callback_query is not None:
            await self.customers.handle(update)
            return
        if chat is None:
            return
        if self.group is not None and chat.id == self.group:
            if update.message is not None:  # managers' edits in the group are not replayed
                await self.desk.in_group(update)
            return
        if chat.type != "private":
            log.info("telegram.ignored_chat", chat_id=chat.id, type=chat.type)
            return
        user = update.effective_user
        manager = await self.core.managers.by_telegram(user.id) if user else None
        if manager is None:  # a non-manager writing the bot privately is a customer
            await self.customers.handle(update)
        elif update.message is not None:
            await self.desk.in_private(manager, update)


def attach(core: Core, runtime: TelegramRuntime) -> Router:
    mirror = Mirror(core, runtime)
    mirror.install()
    router = Router(core, CustomerBot(core, runtime), Desk(core, runtime, mirror))
    runtime.add_handler(router)
    log.info("bot.attached", managers_chat=core.settings.telegram.managers_chat_id)
    return router
