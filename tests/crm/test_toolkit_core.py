"""The toolkit's core: sandboxed templates, signed links, canned replies, search, follow-ups in
business hours, a missed deadline re-armed after reassignment, and migration 0006 over rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crm.automation import automation
from crm.config import Settings
from crm.errors import CrmError
from crm.models import Conversation, Manager, Task
from crm.services import Core
from crm.templates import TemplateProblem, render
from crm.types import Availability, Channel, InboundMessage, TaskKind, TaskState
from tests.conftest import make_settings
from tests.crm.test_migrations import ROWS_0004, upgrade_with_rows
from tests.support.clock import TravelClock


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}", "{{ customer|attr('__class__') }}",
    "{{ '{0.__class__}'.format(customer) }}", "{{ nope }}", "{{ customer.name|safe }}",
    "{{ 'a' * 10000 }}"])
def test_the_sandbox_refuses_what_a_template_must_not_do(source: str) -> None:
    with pytest.raises(TemplateProblem):
        render(source, {"customer": {"name": "Ann"}})


def test_html_templates_escape_variables_and_plain_ones_do_not() -> None:
    context = {"customer": {"name": "<b>Eve</b> & co"}}
    out = render("<b>Hi</b> {{ customer.name }}", context, html_source=True)
    assert out.html == "<b>Hi</b> &lt;b&gt;Eve&lt;/b&gt; &amp; co"
    assert out.text == "Hi <b>Eve</b> & co"
    assert render("Hi {{ customer.name }}", context).text == "Hi <b>Eve</b> & co"
    with pytest.raises(TemplateProblem, match="Telegram"):
        render("<div>x</div>", context, html_source=True)


async def test_canned_replies_pick_the_customer_s_language(core: Core) -> None:
    await core.replies.add("thanks", "Thank you, {{ customer.first_name }}!")
    await core.replies.add("thanks", "Спасибо, {{ customer.first_name }}!", language="ru")
    with pytest.raises(CrmError, match=r"customer\.name"):
        await core.replies.add("bad", "Hi {{ customer.nickname }}")
    result = await core.timeline.ingest(InboundMessage(
        Channel.TELEGRAM, "1:1", "501", text="hi", sender_name="Иван Петров", language="ru"))
    customer = await core.customers.get(result.customer_id)
    _, out = await core.replies.render_for("thanks", customer, None)
    assert out.text == "Спасибо, Иван!"
    assert [(line.key, line.languages) for line in await core.replies.list()] == [
        ("thanks", ["*", "ru"])]
    assert await core.replies.remove("thanks", language="ru") == 1


async def test_search_finds_names_addresses_and_words_in_any_case(core: Core) -> None:
    await core.timeline.ingest(InboundMessage(
        Channel.EMAIL, "<m1@x>", "olga@example.com", text="Где мой ЗАКАЗ номер 42?",
        sender_name="Ольга Смирнова"))
    await core.timeline.ingest(InboundMessage(
        Channel.SMS, "s-1", "+12025550143", text="parcel arrived damaged"))
    found = await core.queries.search("смирн")
    assert [c.name for c in found.customers] == ["Ольга Смирнова"]
    assert [m.snippet for m in (await core.queries.search("заказ")).messages] == [
        "Где мой ЗАКАЗ номер 42?"]
    assert (await core.queries.search("2025550143")).customers[0].addresses == ["+12025550143"]
    assert len((await core.queries.search("parc damag")).messages) == 1
    assert (await core.queries.search("100%_")).messages == []


def _hours(settings: Settings, db: str, **sections: Any) -> Settings:
    return make_settings(db, sla={"timezone": "UTC", "hours": {
        "mon": "09:00-17:00", "tue": "09:00-17:00", "wed": "09:00-17:00", "thu": "09:00-17:00",
        "fri": "09:00-17:00"}}, **sections)


async def test_follow_ups_count_business_hours(db: str, settings: Settings) -> None:
    clock = TravelClock(datetime(2026, 1, 2, 16, 0, tzinfo=UTC))  # a Friday, 16:00
    core = Core.build(_hours(settings, db, followups={"silence_hours": 2}), clock)
    auto = automation(core)
    result = await core.timeline.ingest(InboundMessage(Channel.TELEGRAM, "1:1", "601",
                                                       text="hi"))
    bob = await Manager.create(telegram_user_id=91, name="Bob")
    conv = await Conversation.get(customer_id=result.customer_id)
    await auto.followups.manager_wrote(conv.id, result.customer_id, result.message_id, bob.id)
    task = await Task.get(kind=TaskKind.AUTO_FOLLOWUP)
    # One business hour left on Friday, the second on Monday from 09:00.
    assert task.due_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


async def test_a_managers_followup_and_reminder_count_business_hours(
        db: str, settings: Settings) -> None:
    clock = TravelClock(datetime(2026, 1, 2, 16, 0, tzinfo=UTC))  # a Friday, 16:00
    core = Core.build(_hours(settings, db), clock)
    commands = automation(core).commands
    result = await core.timeline.ingest(InboundMessage(Channel.TELEGRAM, "1:3", "603",
                                                       text="hi"))
    bob = await Manager.create(telegram_user_id=94, name="Bob")
    answer = await commands.followup(bob, result.customer_id, "2h Did it arrive?", clock())
    await commands.followup(bob, result.customer_id, "1d Any news?", clock())
    await commands.remind(bob, result.customer_id, "90m call back", clock())
    due = {t.text: t.due_at for t in await Task.all()}
    # One business hour left on Friday, the rest on Monday from 09:00; a day is a business day.
    assert due["Did it arrive?"] == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert due["Any news?"] == datetime(2026, 1, 5, 16, 0, tzinfo=UTC)
    assert due["call back"] == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    assert "Mon 05 Jan 10:00" in answer  # the manager reads when it will go


async def test_a_missed_deadline_is_re_armed_for_the_new_assignee(db: str,
                                                                 settings: Settings) -> None:
    clock = TravelClock(datetime(2026, 1, 5, 10, 0, tzinfo=UTC))  # a Monday
    core = Core.build(make_settings(db, routing={"first_response_minutes": 15}), clock)
    automation(core)
    ann = await Manager.create(telegram_user_id=92, name="Ann",
                               availability=Availability.ONLINE)
    result = await core.timeline.ingest(InboundMessage(Channel.TELEGRAM, "1:2", "602",
                                                       text="help"))
    conv = await Conversation.get(customer_id=result.customer_id)
    assert conv.assignee_id == ann.id
    await Manager.create(telegram_user_id=93, name="Cid", availability=Availability.ONLINE)
    clock.advance(minutes=16)
    await automation(core).tasks.run_due()
    conv = await Conversation.get(id=conv.id)
    assert conv.assignee_id != ann.id
    assert conv.first_response_due == clock() + timedelta(minutes=15)
    pending = await Task.filter(conversation_id=conv.id, state=TaskState.PENDING,
                                kind=TaskKind.DEADLINE_MISSED)
    assert [t.due_at for t in pending] == [conv.first_response_due]


def test_migration_0006_keeps_rows_and_adds_the_toolkit(new_db_url: Any, tmp_path: Path) -> None:
    rows = ROWS_0004 + """
INSERT INTO manager (id, telegram_user_id, name, role, availability, capacity, channels, tags,
                     active, created_at)
VALUES (1, 77, 'Bob', 'manager', 'online', 20, '[]', '[]', TRUE, '2026-01-01 00:00:00+00:00');
UPDATE conversation SET assignee_id = 1 WHERE id = 1;
"""
    steps = upgrade_with_rows(new_db_url(), "0005_api_keys", rows,
                              ["manager", "conversation", "message", "canned_reply"], tmp_path)
    head: Any = steps["head"]
    assert head["manager"][0]["language"] is None and head["canned_reply"] == []
    assert [m["text"] for m in head["message"]] == ["hello"]
    down: Any = steps["down"]
    # Dropping the column must not rebuild `manager`: the conversation keeps its assignee.
    assert "language" not in down["manager"][0] and down["canned_reply"] is None
    assert down["conversation"][0]["assignee_id"] == 1
    assert steps["again"]["canned_reply"] == []  # type: ignore[comparison-overlap]
