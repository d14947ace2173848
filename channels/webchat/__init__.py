"""The web chat: a widget on the shop's own site (one script tag), its HTTP side under
/webchat, and its sender. Visitors' messages join the same timeline, the managers' topics and
the console as every channel's; replies reach their page live."""

from __future__ import annotations

import structlog
from aiohttp import web

from channels.webchat import pages
from channels.webchat.hub import Hub
from channels.webchat.origins import Origins, preflight
from channels.webchat.routes import Webchat
from channels.webchat.runtime import WebchatRuntime
from channels.webchat.sender import WebchatSender
from channels.webchat.tokens import VisitorTokens
from crm.errors import ConfigError
from crm.services import Core

__all__ = ["PREFIX", "build"]

log = structlog.get_logger(__name__)

PREFIX = "/webchat"


def build(core: Core, web_app: web.Application) -> WebchatRuntime | None:
    """The web chat channel, or None (logged) when it is off."""
    settings = core.settings
    if not settings.webchat.enabled:
        log.info("channel.off", channel="webchat",
                 how="set [webchat] enabled = true and list your site in allowed_origins")
        return None
    if core.live is None:
        raise ConfigError("the web chat needs the live feed: the composition root starts it")
    origins = Origins(settings.webchat.allowed_origins, settings.http.public_url)
    hub = Hub(core.live)
    # A reply to a visitor who left the page goes to the address they confirmed for answers.
    core.conversations.on_page = lambda visitor: hub.count(visitor) > 0
    webchat = Webchat(core, hub, VisitorTokens(core.signer, settings.webchat.visitor_days))
    app = web.Application(middlewares=[origins.guard, webchat.errors])
    app.on_response_prepare.append(origins.on_prepare)
    webchat.mount(app)
    pages.mount(app, settings)
    app.router.add_route("OPTIONS", "/{tail:.*}", preflight)
    web_app.add_subapp(PREFIX, app)
    log.info("channel.configured", channel="webchat",
             widget=f"{settings.http.public_url.rstrip('/')}{PREFIX}/widget.js",
             allowed_origins=sorted(origins.allowed))
    return WebchatRuntime(WebchatSender(settings.webchat.send_per_second), hub)
