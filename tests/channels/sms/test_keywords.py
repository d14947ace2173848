"""STOP, START and HELP in English and Russian (pure)."""

from __future__ import annotations

import pytest

from channels.sms.keywords import Keyword, match_keyword


@pytest.mark.parametrize(("text", "keyword", "language"), [
    ("STOP", Keyword.STOP, "en"), ("stop", Keyword.STOP, "en"), (" Stop! ", Keyword.STOP, "en"),
    ("STOPALL", Keyword.STOP, "en"), ("stop all", Keyword.STOP, "en"),
    ("Unsubscribe", Keyword.STOP, "en"), ("cancel", Keyword.STOP, "en"),
    ("END", Keyword.STOP, "en"), ("quit.", Keyword.STOP, "en"), ("opt-out", Keyword.STOP, "en"),
    ("СТОП", Keyword.STOP, "ru"), ("стоп", Keyword.STOP, "ru"),
    ("Отписаться", Keyword.STOP, "ru"),
    ("START", Keyword.START, "en"), ("unstop", Keyword.START, "en"),
    ("старт", Keyword.START, "ru"),
    ("HELP", Keyword.HELP, "en"), ("info", Keyword.HELP, "en"),
    ("Помощь", Keyword.HELP, "ru"),
])
def test_keywords(text: str, keyword: Keyword, language: str) -> None:
    found = match_keyword(text)
    assert found is not None and (found.keyword, found.language) == (keyword, language)


@pytest.mark.parametrize("text", [
    "please stop calling me", "stop it, I already paid", "How do I cancel my order?",
    "I need help", "", "   ", "stopped", "Yes", "да",
])
def test_ordinary_messages_are_not_keywords(text: str) -> None:
    assert match_keyword(text) is None


def test_yes_means_start_only_for_a_customer_who_opted_out() -> None:
    assert match_keyword("yes") is None
    found = match_keyword("YES", opted_out=True)
    assert found is not None and found.keyword is Keyword.START
    found = match_keyword("Да", opted_out=True)
    assert found is not None and (found.keyword, found.language) == (Keyword.START, "ru")
