"""The README's table of what customers can say ("What customers can say") lists every command
and keyword bot/intents.py knows, in the row of its intent and the column of its channel, so
the two cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot import intents
from bot.intents import CONSENT_INTENTS, Intent, normalize

README = Path(__file__).resolve().parents[2] / "README.md"
# The table's rows, by their first cell.
ROWS: dict[str, set[Intent]] = {
    "greeting and the menu": {Intent.GREET},
    "help and the menu": {Intent.HELP, Intent.MENU},
    "stop news and offers here": {Intent.STOP},
    "stop on every channel": {Intent.STOP_ALL},
    "start again": {Intent.START},
    "language": {Intent.LANGUAGE},
    "talk to a person": {Intent.TALK},
    "rate the conversation": {Intent.RATE},
    "share my phone number": {Intent.PHONE, Intent.CONTACT},
    "my orders": {Intent.ORDERS},
    "one order and its history": {Intent.ORDER},
    "order updates off / on": {Intent.NOTIFICATIONS},
}
# Not a command anyone types: how the Telegram adapter hands on a shared contact card
# (channels/telegram/normalize.py).
NOT_TYPED = {"contact"}
TELEGRAM, SMS, EMAIL = 1, 2, 3  # the table's columns


def _table() -> dict[str, list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## What customers can say", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert rows[0].startswith("| intent | Telegram | SMS | email"), rows[0]
    table = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, f"README: a row of the table has {len(cells)} cells: {line}"
        table[cells[0]] = cells
    return table


def _row(table: dict[str, list[str]], intent: Intent) -> list[str]:
    label = next(label for label, kinds in ROWS.items() if intent in kinds)
    assert label in table, f"README's table has no row {label!r}"
    return table[label]


def _words(cell: str) -> set[str]:
    """What the cell says, as keywords: each word and each run of up to five words written
    together ("TALK TO A PERSON" is TALKTOAPERSON), case and Ё ignored, as the bot reads them."""
    tokens = [normalize(t) for t in re.findall(r"\w+", cell)]
    return {"".join(tokens[i:i + n]) for i in range(len(tokens)) for n in range(1, 6)}


def _commands(cell: str) -> set[str]:
    return set(re.findall(r"(?<![\w/])/(\w+)", cell))


@pytest.fixture(scope="module")
def table() -> dict[str, list[str]]:
    return _table()


def test_the_table_has_a_row_for_each_intent_a_customer_can_use(
        table: dict[str, list[str]]) -> None:
    assert set(table) == set(ROWS)
    assert set().union(*ROWS.values()) == set(Intent) - {Intent.UNKNOWN}


def test_every_telegram_command_is_in_its_row(table: dict[str, list[str]]) -> None:
    missing = [f"/{name} ({intent.value})" for name, intent in intents._COMMANDS.items()
               if name not in NOT_TYPED and name not in _commands(_row(table, intent)[TELEGRAM])]
    assert not missing, f"README's table lacks the Telegram commands {missing}"


def test_every_sms_keyword_is_in_its_row(table: dict[str, list[str]]) -> None:
    wanted = [(word, intent) for word, (intent, _lang) in intents._KEYWORDS.items()]
    wanted += [(word, Intent.NOTIFICATIONS) for word in (*intents._NOTIFY_WORDS,
                                                         *intents._SWITCH)]
    wanted += [(word, Intent.LANGUAGE) for word in intents._LANGUAGE_WORDS]
    wanted += [(word, Intent.START) for word in intents._YES]  # after a stop confirmation
    wanted += [(normalize(word), Intent.ORDER)
               for word in re.search(r"\((\w+\|\w+)\)", intents._ORDER.pattern)
               .group(1).split("|")]  # type: ignore[union-attr]
    missing = [f"{word} ({intent.value})" for word, intent in wanted
               if word not in _words(_row(table, intent)[SMS])]
    assert not missing, f"README's table lacks the SMS keywords {missing}"


def test_every_email_keyword_is_in_its_row(table: dict[str, list[str]]) -> None:
    # Stop and start have a short list of their own by email; every other SMS keyword also
    # works in a mail that says nothing else.
    wanted = [(word, intent) for word, (intent, _lang) in intents._EMAIL_CONSENT.items()]
    wanted += [(word, intent) for word, (intent, _lang) in intents._KEYWORDS.items()
               if intent not in CONSENT_INTENTS]
    wanted += [(word, Intent.NOTIFICATIONS) for word in (*intents._NOTIFY_WORDS,
                                                         *intents._SWITCH)]
    wanted += [(word, Intent.LANGUAGE) for word in intents._LANGUAGE_WORDS]
    missing = [f"{word.lower()} ({intent.value})" for word, intent in wanted
               if word not in _words(_row(table, intent)[EMAIL])]
    assert not missing, f"README's table lacks the email keywords {missing}"
