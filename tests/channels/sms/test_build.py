"""Turning the SMS channel on: off when not configured, a clear error for a weak token."""

from __future__ import annotations

import pytest
from aiohttp import web

from channels.sms import build
from crm.errors import ConfigError
from crm.services import Core
from tests.conftest import make_settings

KANNEL = {"provider": "kannel", "kannel": {"username": "crm", "password": "secret"}}


def test_off_when_not_configured(db: str) -> None:
    assert build(Core.build(make_settings(db)), web.Application()) is None


@pytest.mark.parametrize("token", ["", "short", "has spaces in it and is long", "a%2Fb" * 5])
def test_the_inbound_token_is_required_and_url_safe(db: str, token: str) -> None:
    settings = make_settings(db, sms={**KANNEL, "inbound_token": token})
    with pytest.raises(ConfigError, match="inbound_token"):
        build(Core.build(settings), web.Application())


def test_mounts_only_the_providers_endpoints(db: str) -> None:
    app = web.Application()
    settings = make_settings(db, sms={**KANNEL, "inbound_token": "x" * 20})
    runtime = build(Core.build(settings), app)
    assert runtime is not None and runtime.sender is not None
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {"/sms/kannel/inbound", "/sms/kannel/dlr"} <= paths
    assert not any(p.startswith("/sms/twilio") for p in paths)
