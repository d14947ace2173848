"""The telegram channel adapter."""

from __future__ import annotations

import structlog
from aiohttp import web

from crm.ports import ChannelRuntime
from crm.services import Core

log = structlog.get_logger(__name__)


def build(core: Core, web_app: web.Application) -> ChannelRuntime | None:
    """The telegram channel, or None (logged) when it is not configured."""
    log.info("channel.off", channel="telegram",
             how="fill in the [telegram] section of the config file to turn it on")
    return None
