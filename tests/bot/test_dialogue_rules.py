"""The dialogue's rules on the database, without a gateway: SMS STOP's silence, answers to the
address that asked, numbers and ratings that are only what they seem."""

from __future__ import annotations

import itertools

import pytest

from bot import Dialogue
from crm.automation import automation
from crm.errors import SendRejected
from crm.models import Conversation, Identity, Message, Outbox, Task
from crm.services import Core
from crm.types import (
    Channel,
    ConsentKind,
    ConversationStatus,
    Direction,
    InboundMessage,
    TaskKind,
    TaskState,
)
from tests.conftest import make_settings
from tests.support.clock import TravelClock

PHONE = "+12025550777"
_ids = itertools.count(1)


@pytest.fixture
def clock() -> TravelClock:
    return TravelClock()


@pytest.fixture
def talk(db: str, clock: TravelClock) -> Core:
    settings = make_settings(db, followups={"survey": True, "survey_delay_minutes": 1,
                                            "survey_answer_hours": 1})
    core = Core.build(settings, clock)
    core.inbox = Dialogue(core)
    return core


async def says(core: Core, text: str, sender: str = PHONE,
               channel: Channel = Channel.SMS) -> Message:
    result = await core.inbox.receive(InboundMessage(channel, f"m{next(_ids)}", sender,
                                                     text=text))
    return await Message.get(id=result.message_id)


async def bot_texts(customer_id: int) -> list[str]:
    rows = await Message.filter(customer_id=customer_id, direction=Direction.OUT,
                                author_kind="bot").order_by("id")
    return [m.text for m in rows]


async def test_after_sms_stop_only_answers_to_the_customer_s_keywords_go_by_sms(
        talk: Core, clock: TravelClock) -> None:
    hello = await says(talk, "hello, my parcel?")
    cid = hello.customer_id
    await says(talk, "STOP")
    with pytest.raises(SendRejected, match="nothing automatic"):
        await talk.conversations.send(cid, "How did we do?", author_kind="bot")
    with pytest.raises(SendRejected, match="only after they write again"):
        await talk.conversations.send(cid, "Your parcel left today.")
    # HELP is still answered (carriers require it), and says how to come back.
    await says(talk, "HELP")
    assert (await bot_texts(cid))[-1].startswith("our team: write your question")
    # The customer writes again: a manager may answer that by SMS.
    clock.advance(seconds=1)
    await says(talk, "is it coming today?")
    reply = await talk.conversations.send(cid, "Yes, by 6 pm.")
    assert reply.channel is Channel.SMS
    # The survey after closing stays silent by SMS: skipped, not failed.
    await talk.conversations.set_status(cid, ConversationStatus.CLOSED, "test")
    clock.advance(minutes=2)
    await automation(talk).tasks.run_due()
    [survey] = await Task.filter(kind=TaskKind.SURVEY)
    assert survey.state is TaskState.SKIPPED
    assert not any("rate" in t for t in await bot_texts(cid))


async def test_answers_go_to_the_address_that_asked(talk: Core, clock: TravelClock) -> None:
    home = await says(talk, "hi from home", "ann@home.example", Channel.EMAIL)
    await talk.customers.link_identity(home.customer_id, Channel.EMAIL, "ann@work.example")
    clock.advance(minutes=5)  # the work address is now the one seen last
    await Identity.filter(address="ann@work.example").update(last_seen_at=clock())
    stop = await says(talk, "unsubscribe", "ann@home.example", Channel.EMAIL)
    [confirmation] = await Outbox.filter(customer_id=stop.customer_id,
                                         idempotency_key__startswith="dialogue:")
    assert confirmation.address == "ann@home.example"


async def test_a_number_long_after_a_menu_is_a_message(talk: Core, clock: TravelClock) -> None:
    await says(talk, "MENU")
    picked = await says(talk, "1")  # "Talk to a manager", the menu's first line
    assert picked.conversation_id is not None and "command" not in picked.meta
    await says(talk, "MENU")
    clock.advance(hours=25)
    late = await says(talk, "2")
    assert "command" not in late.meta  # a day later "2" means two, for the team
    assert (await Conversation.get(id=late.conversation_id)).status is ConversationStatus.OPEN


async def test_a_rating_after_the_survey_closed_reaches_the_team(
        talk: Core, clock: TravelClock) -> None:
    hello = await says(talk, "hello")
    await talk.conversations.set_status(hello.customer_id, ConversationStatus.CLOSED, "test")
    clock.advance(minutes=2)
    await automation(talk).tasks.run_due()
    assert (await bot_texts(hello.customer_id))[-1].startswith("How did we do?")
    clock.advance(hours=2)  # past survey_answer_hours, while its 1–5 are still the last words
    late = await says(talk, "5")
    assert "command" not in late.meta  # not swallowed as a rating nobody can take
    conversation = await Conversation.get(id=late.conversation_id)
    assert conversation.status is ConversationStatus.OPEN and conversation.rating is None


async def test_keywords_from_a_sender_name_are_applied_not_answered(talk: Core) -> None:
    stop = await says(talk, "STOP", "ACME-Bank")
    assert await bot_texts(stop.customer_id) == []
    assert not await talk.consent.allows(stop.customer_id, ConsentKind.MARKETING, Channel.SMS)
