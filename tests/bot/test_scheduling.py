"""The chat side of the scheduling commands: parsing and one call each, no Telegram needed."""

from __future__ import annotations

from bot.scheduling import answer, split_command
from crm.automation import automation
from crm.models import Conversation, Task
from crm.types import Availability, ConversationStatus, TaskKind
from tests.support.automation import build, manager, says
from tests.support.clock import TravelClock


def test_split_command() -> None:
    assert split_command("/remind@crm_bot 2d call back") == ("remind", "2d call back")
    assert split_command("/queue") == ("queue", "")
    assert split_command("hello") is None


async def test_commands_answer_and_others_pass_through(db: str) -> None:
    clock = TravelClock()
    core, _ = build(db, clock, followups={"survey": True, "survey_delay_minutes": 1})
    ann = await manager("Ann", online=False)
    r = await core.timeline.ingest(says("topic-customer"))
    assert await answer(core, ann, r.customer_id, "/start", clock()) is None
    assert "not a duration" in (await answer(core, ann, r.customer_id, "/remind soon x",
                                             clock()) or "")
    reply = await answer(core, ann, r.customer_id, "/remind 3h call back", clock(), ref="1:2")
    assert reply is not None and reply.startswith("Reminder #")
    assert await Task.filter(kind=TaskKind.REMINDER, customer_id=r.customer_id).count() == 1
    assert (await answer(core, ann, None, "/queue", clock()) or "").startswith("1 waiting")
    assert "1 waiting conversation(s) assigned" in (await answer(core, ann, None, "/online",
                                                                 clock()) or "")
    assert "call back" in (await answer(core, ann, None, "/tasks", clock()) or "")
    await answer(core, ann, None, "/away", clock())
    await ann.refresh_from_db()
    assert ann.availability is Availability.AWAY

    await core.conversations.set_status(r.customer_id, ConversationStatus.CLOSED, "test")
    clock.advance(minutes=2)
    await core.timeline.ingest(says("other"))  # unrelated traffic
    await automation(core).tasks.run_due()
    assert await automation(core).followups.rate(r.customer_id, 4)
    assert (await Conversation.get(id=r.conversation_id)).rating == 4
    assert not await automation(core).followups.rate(r.customer_id, 5)  # answered already
