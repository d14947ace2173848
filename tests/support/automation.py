"""Helpers for routing, deadline and follow-up tests: a core with a travel clock, managers,
customer messages, and a recorder of the notices the team would see."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from crm.automation import Automation, automation
from crm.events import TeamNotice
from crm.models import Manager
from crm.services import Core
from crm.types import Availability, Channel, InboundMessage, Role
from tests.conftest import make_settings
from tests.support.clock import TravelClock

_ids = itertools.count(1)


def build(db_url: str, clock: TravelClock, **sections: dict[str, Any]) -> tuple[Core, Automation]:
    core = Core.build(make_settings(db_url, **sections), clock)
    return core, automation(core)


async def manager(name: str, *, online: bool = True, capacity: int = 20,
                  role: Role = Role.MANAGER, channels: tuple[str, ...] = (),
                  tags: tuple[str, ...] = ()) -> Manager:
    return await Manager.create(
        telegram_user_id=1000 + next(_ids), name=name, role=role, capacity=capacity,
        availability=Availability.ONLINE if online else Availability.AWAY,
        channels=list(channels), tags=list(tags))


def says(sender: str, text: str = "hello", channel: Channel = Channel.TEST,
         **kw: Any) -> InboundMessage:
    return InboundMessage(channel=channel, external_id=f"m{next(_ids)}", sender=sender,
                          text=text, **kw)


class Notices:
    """What the managers' chat would show: every committed TeamNotice."""

    def __init__(self, core: Core) -> None:
        self.seen: list[TeamNotice] = []
        self._changed = asyncio.Condition()
        core.bus.subscribe(TeamNotice, self._record, phase="after_commit")

    async def _record(self, notice: TeamNotice) -> None:
        self.seen.append(notice)
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, kind: str, count: int = 1, timeout: float = 15) -> list[TeamNotice]:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.of(kind)) >= count), timeout)
        return self.of(kind)

    def of(self, kind: str) -> list[TeamNotice]:
        return [n for n in self.seen if n.kind == kind]
