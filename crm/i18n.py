"""Texts in English and Russian: one TOML catalogue per language in crm/locales/.

Customers' texts are `t` (crm/locales/en.toml, ru.toml); the team's (notices, cards, command
answers) are `team` (crm/locales/team.en.toml, team.ru.toml). A `Phrase` is a text not yet
put in a language: core services hand one to the managers' chat with a notice, and each
reader gets it in theirs (values may be phrases or times, rendered in that language too).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("en", "ru")
DEFAULT = "en"
_MONTHS_RU = ("янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя",
              "дек")
_DAYS_RU = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")


@cache
def _catalogue(name: str) -> dict[str, str]:
    text = resources.files("crm").joinpath(f"locales/{name}.toml").read_text("utf-8")
    return {k: str(v) for k, v in tomllib.loads(text).items()}


def pick_language(code: str | None, default: str = DEFAULT) -> str:
    lang = (code or "").split("-")[0].lower()
    return lang if lang in LANGUAGES else default


def known_language(code: str | None) -> str | None:
    """`code` as one of ours ("ru-RU" → "ru"), or None when we have no such language."""
    lang = (code or "").split("-")[0].lower()
    return lang if lang in LANGUAGES else None


def _text(prefix: str, key: str, language: str | None, values: Mapping[str, Any]) -> str:
    lang = pick_language(language)
    template = _catalogue(f"{prefix}{lang}").get(key) or _catalogue(f"{prefix}{DEFAULT}").get(key)
    if template is None:
        raise KeyError(f"no text {key!r} in crm/locales/{prefix}{DEFAULT}.toml")
    if not values:
        return template
    return template.format(**{k: _value(v, lang) for k, v in values.items()})


def t(key: str, language: str | None = None, /, **values: object) -> str:
    """The customer-facing text `key` in `language` (falling back to English)."""
    return _text("", key, language, values)


def team(key: str, language: str | None = None, /, **values: object) -> str:
    """The team's text `key` in `language` (falling back to English)."""
    return _text("team.", key, language, values)


def moment(when: datetime, language: str | None = None) -> str:
    """'Mon 05 Jan 10:00' / 'пн 05 янв 10:00' (in the zone `when` is in)."""
    if pick_language(language) == "ru":
        return f"{_DAYS_RU[when.weekday()]} {when.day:02d} {_MONTHS_RU[when.month - 1]} " \
               f"{when:%H:%M}"
    return when.strftime("%a %d %b %H:%M")


class Phrase:
    """A team text to be put in the reader's language: `team(key, lang, **values)`."""

    __slots__ = ("key", "values")

    def __init__(self, key: str, values: Mapping[str, Any] | None = None, /,
                 **named: Any) -> None:
        self.key = key
        self.values: dict[str, Any] = {**(values or {}), **named}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Phrase) and (self.key, self.values) == (other.key, other.values)

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Phrase({self.key!r}, {self.values!r})"

    def render(self, language: str | None = None) -> str:
        return team(self.key, language, **self.values)

    def __str__(self) -> str:
        return self.render(DEFAULT)


def _value(value: Any, lang: str) -> Any:
    if isinstance(value, Phrase):
        return value.render(lang)
    if isinstance(value, datetime):
        return moment(value, lang)
    return value
