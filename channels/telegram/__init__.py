"""The Telegram channel adapter: python-telegram-bot inside the service's event loop.

`build` returns the runtime (polling or webhook) with its sender; the bot (bot/) adds its update
handlers to it from the composition root.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from channels.telegram.runtime import TelegramRuntime
from crm.services import Core

log = structlog.get_logger(__name__)

__all__ = ["TelegramRuntime", "build"]


def build(core: Core, web_app: web.Application) -> TelegramRuntime | None:
    """The telegram channel, or None (logged) when it is not configured."""
    settings = core.settings.telegram
    if not settings.enabled:
        log.info("channel.off", channel="telegram",
                 how="set [telegram] token (from @BotFather) in the config file to turn it on")
        return None
    runtime = TelegramRuntime(core, settings, settings.webhook_path)
    if settings.mode == "webhook":
        runtime.mount(web_app)
    return runtime
