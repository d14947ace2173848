"""Nobody is forgotten: routing, deadlines, follow-ups and surveys wired to the core's events.

`automation(core)` builds the services once per Core and subscribes them to the event bus, in
the transaction of each event, so an assignment, a deadline or a cancelled follow-up commits
with the message that caused it. The bot (commands) and the scheduler (timers) both reach the
services through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from crm.autoreplies import AutoReplies
from crm.deadlines import SLA_KINDS, Deadlines
from crm.events import REACT, ConversationChanged, MessageQueued, MessageReceived
from crm.followups import Followups
from crm.i18n import Phrase
from crm.models import Conversation
from crm.reports.digest import Digest
from crm.reports.facts import Facts
from crm.routing import Router
from crm.sla import BusinessHours
from crm.tasks import Tasks
from crm.team_commands import TeamCommands
from crm.types import ConversationStatus, Direction

if TYPE_CHECKING:
    from crm.services import Core

log = structlog.get_logger(__name__)
_ATTR = "_crm_automation"


class Automation:
    def __init__(self, core: Core) -> None:
        sla = core.settings.sla
        self.core = core
        self.hours = BusinessHours.build(sla.timezone, sla.hours, sla.holidays)
        self.tasks = Tasks(core.bus, core.clock, core.settings.scheduler.task_max_attempts)
        self.router = Router(core)
        self.deadlines = Deadlines(core, self.tasks, self.router, self.hours)
        self.followups = Followups(core, self.tasks, self.hours)
        self.commands = TeamCommands(core, self.tasks, self.router, self.hours)
        self.replies = AutoReplies(core, self.hours)
        self.facts = Facts(self.hours, core.clock)
        self.digest = Digest(core, self.tasks)

    def install(self) -> None:
        bus = self.core.bus
        # Reactions: they run after what records the event (the managers' chat mirror).
        bus.subscribe(MessageReceived, self._received, phase="in_transaction", order=REACT)
        bus.subscribe(MessageQueued, self._queued, phase="in_transaction", order=REACT)
        bus.subscribe(ConversationChanged, self._changed, phase="in_transaction", order=REACT)
        bus.subscribe(ConversationChanged, self._after_changed, phase="after_commit",
                      order=REACT)

    async def _received(self, event: MessageReceived) -> None:
        if event.direction is not Direction.IN or event.automated \
                or event.conversation_id is None or event.command is not None:
            return  # an intent (STOP, a menu button, a survey button) is the dialogue's
        conv = await Conversation.get(id=event.conversation_id)
        if await self.followups.rating_answer(event, conv):
            return
        if conv.status is ConversationStatus.CLOSED:
            return
        await self.followups.customer_wrote(conv)
        if event.new_conversation or event.reopened:
            await self.router.route(conv, reason=Phrase(
                "reason_new" if event.new_conversation else "reason_reopened"))
        await self.deadlines.customer_wrote(conv, new=event.new_conversation)
        await self.facts.customer_waits(conv)

    async def _queued(self, event: MessageQueued) -> None:
        if event.direction is not Direction.OUT or not event.answers \
                or event.conversation_id is None:
            return  # the bot's messages leave the customer waiting for a person
        await self.deadlines.answered(event.conversation_id)
        await self.facts.person_replied(event.conversation_id, event.author_id,
                                        event.channel.value)
        await self.followups.manager_wrote(event.conversation_id, event.customer_id,
                                           event.message_id, event.author_id)

    async def _changed(self, event: ConversationChanged) -> None:
        if event.change == "assigned" and event.assignee_id is not None:
            conv = await Conversation.get(id=event.conversation_id)
            await self.deadlines.reassigned(conv)
            return
        if event.status is not ConversationStatus.CLOSED:
            return
        await Conversation.filter(id=event.conversation_id).update(
            queued_at=None, first_response_due=None, next_response_due=None)
        await self.tasks.cancel(SLA_KINDS, conversation_id=event.conversation_id,
                                reason="closed")
        if event.change == "merged":
            return  # merged into the survivor's conversation: no survey for this one
        conv = await Conversation.get(id=event.conversation_id)
        await self.facts.closed(conv)
        await self.followups.closed(conv)

    async def _after_changed(self, event: ConversationChanged) -> None:
        if event.status is ConversationStatus.CLOSED:  # capacity freed
            await self.router.drain()


def automation(core: Core) -> Automation:
    """The automation of `core`, built and subscribed on first use."""
    found = core.__dict__.get(_ATTR)
    if isinstance(found, Automation):
        return found
    built = Automation(core)
    built.install()
    core.__dict__[_ATTR] = built
    log.info("automation.installed", strategy=core.settings.routing.strategy,
             around_the_clock=built.hours.always_open)
    return built
