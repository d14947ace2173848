"""Read models: a view built from a row is the same frozen value its class would make."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from crm.types import Channel, ConversationStatus
from crm.views import ConversationView, conversation_from, conversation_of

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_a_conversation_from_a_row_is_the_value_its_class_makes() -> None:
    made = ConversationView(7, 3, "Ann", ConversationStatus.OPEN, None, Channel.SMS, "Hi", T0,
                            None, None, T0.replace(microsecond=123456), None)
    # SQLite hands back text, PostgreSQL datetimes; a dict row (a card's latest) names them.
    sqlite_row = (7, 3, "Ann", "open", None, "sms", "Hi", "2026-03-02 10:00:00+00:00", None,
                  None, "2026-03-02 10:00:00.123456+00:00", None)
    postgres_row = (7, 3, "Ann", "open", None, "sms", "Hi", T0, None, None,
                    T0.replace(microsecond=123456), None)
    named = {f.name: getattr(made, f.name) for f in dataclasses.fields(made)}
    for built in (conversation_from(sqlite_row), conversation_from(postgres_row),
                  conversation_of({**named, "status": "open", "channel": "sms"})):
        assert built == made and hash(built) == hash(made) and repr(built) == repr(made)
        assert built.to_json() == made.to_json()
        assert built.to_json()["last_inbound_at"] == "2026-03-02T10:00:00.123456+00:00"
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.status = ConversationStatus.CLOSED  # type: ignore[misc]
