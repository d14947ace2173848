"""The catalogues and the phrases: every text in both languages with the same blanks, and a
phrase kept in the timeline reads back in either language. Pure."""

from __future__ import annotations

import string
import tomllib
from datetime import UTC, datetime
from importlib import resources

import pytest

from crm.errors import NotFound
from crm.i18n import Label, Phrase, Size, size, team

PAIRS = [("en", "ru"), ("team.en", "team.ru")]


def _catalogue(name: str) -> dict[str, str]:
    text = resources.files("crm").joinpath(f"locales/{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


def _blanks(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


@pytest.mark.parametrize(("english", "russian"), PAIRS)
def test_both_languages_have_every_text_with_the_same_blanks(english: str,
                                                             russian: str) -> None:
    en, ru = _catalogue(english), _catalogue(russian)
    assert sorted(set(en) - set(ru)) == [], f"missing in {russian}.toml"
    assert sorted(set(ru) - set(en)) == [], f"missing in {english}.toml"
    differ = {key: (sorted(_blanks(en[key])), sorted(_blanks(ru[key])))
              for key in en if _blanks(en[key]) != _blanks(ru[key])}
    assert differ == {}, f"{english}.toml and {russian}.toml fill in different {{names}}"


def test_a_phrase_kept_as_json_reads_back_in_each_language() -> None:
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    said = Phrase("event_order", head=Phrase(
        "event_order_moved", number="A-1", previous=Label({"en": "New", "ru": "Новый"}),
        status=Label({"en": "Shipped"}), actor=Phrase("actor_api", name="shop")),
        note=Phrase("event_order_note", note="DHL"), untold="")
    kept = Phrase.from_json(said.to_json())
    assert kept == said
    assert kept is not None and kept.render("en") == \
        "Order A-1: New → Shipped (API key shop). Note: DHL"
    # A label the config gives only in English stays English in a Russian text.
    assert kept.render("ru") == "Заказ A-1: Новый → Shipped (ключ API shop). Заметка: DHL"
    moment = Phrase.from_json(Phrase("reminder_set", id=3, due=at, text="call").to_json())
    assert moment is not None and "пн 02 мар 09:30" in moment.render("ru")


def test_what_cannot_be_read_back_is_no_phrase() -> None:
    assert Phrase.from_json(None) is None
    assert Phrase.from_json({"key": "no_such_text_anywhere", "args": {}}) is None
    assert Phrase.from_json({"key": "event_assigned", "args": {"name": {"odd": 1}}}) is None


def test_sizes_read_in_each_language() -> None:
    assert [size(n) for n in (500, 4000, 1_500_000, 12 * 1024 * 1024)] == \
        ["500 bytes", "4 KB", "1.4 MB", "12 MB"]
    assert size(1_500_000, "ru") == "1,4 МБ"
    assert team("file_more_than", "ru", limit=Size(20 * 1024 * 1024)) == "больше 20 МБ"


def test_an_error_says_its_sentence_in_english_and_in_the_reader_s_language() -> None:
    error = NotFound(Phrase("reply_unknown", key="nope"))
    assert str(error) == "No canned reply nope: /replies lists them."  # logs, CLI, API
    assert error.in_language("ru") == "Готового ответа nope нет: список — /replies."
    assert NotFound("plain").in_language("ru") == "plain"
