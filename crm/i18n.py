"""Texts in English and Russian: one TOML catalogue per language in crm/locales/.

Customers' texts are `t` (crm/locales/en.toml, ru.toml); the team's (notices, cards, command
answers) are `team` (crm/locales/team.en.toml, team.ru.toml). A `Phrase` is a team text not yet
put in a language: core services hand one to the managers' chat with a notice, an error
(`CrmError.phrase`) or a timeline event (kept in `Message.meta["phrase"]` as JSON), and each
reader gets it in theirs. Its values may be phrases, times, file sizes (`Size`) or texts the
config gives per language (`Label`, e.g. an order status), rendered in that language too.
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
_MB = 1024 * 1024


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


def texts(prefix: str, language: str | None = None) -> dict[str, str]:
    """Every customer text whose key starts with `prefix`, in `language` (English where it has
    none), keyed without the prefix: what a page's script shows (the web chat widget)."""
    lang = pick_language(language)
    english, own = _catalogue(DEFAULT), _catalogue(lang)
    return {k.removeprefix(prefix): own.get(k) or v for k, v in english.items()
            if k.startswith(prefix)}


def team(key: str, language: str | None = None, /, **values: object) -> str:
    """The team's text `key` in `language` (falling back to English)."""
    return _text("team.", key, language, values)


def size(count: int, language: str | None = None) -> str:
    """12582912 -> '12 MB' / '12 МБ', 1500000 -> '1.4 MB' / '1,4 МБ', 4000 -> '4 KB'."""
    ru = pick_language(language) == "ru"
    units = ("байт", "КБ", "МБ") if ru else ("bytes", "KB", "MB")
    if count < 1024:
        return f"{count} {units[0]}"
    if count < _MB:
        return f"{count / 1024:.0f} {units[1]}"
    value = count / _MB
    shown = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
    return f"{shown.replace('.', ',') if ru else shown} {units[2]}"


def moment(when: datetime, language: str | None = None) -> str:
    """'Mon 05 Jan 10:00' / 'пн 05 янв 10:00' (in the zone `when` is in)."""
    if pick_language(language) == "ru":
        return f"{_DAYS_RU[when.weekday()]} {when.day:02d} {_MONTHS_RU[when.month - 1]} " \
               f"{when:%H:%M}"
    return when.strftime("%a %d %b %H:%M")


class Size(int):
    """A number of bytes, shown as `size` in the reader's language."""

    __slots__ = ()


class Label:
    """A text the config gives per language ({"en": "Shipped", "ru": "Отправлен"}): the
    reader's, else the English one."""

    __slots__ = ("texts",)

    def __init__(self, texts: Mapping[str, str]) -> None:
        self.texts = dict(texts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Label) and self.texts == other.texts

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.texts.items())))

    def __repr__(self) -> str:
        return f"Label({self.texts!r})"

    def render(self, language: str | None = None) -> str:
        lang = pick_language(language)
        return self.texts.get(lang) or self.texts.get(DEFAULT) or next(iter(self.texts.values()),
                                                                      "")

    def __str__(self) -> str:
        return self.render(DEFAULT)


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

    def to_json(self) -> dict[str, Any]:
        """What a timeline entry or a file's meta keeps: {"key": …, "args": {…}}."""
        return {"key": self.key, "args": {k: _to_json(v) for k, v in self.values.items()}}

    @classmethod
    def from_json(cls, data: object) -> Phrase | None:
        """The phrase `to_json` kept, or None for anything else (an entry from before, a key
        since removed from the catalogue): the caller then shows the stored text."""
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            return None
        args = data.get("args")
        values = {str(k): _from_json(v) for k, v in args.items()} if isinstance(args, dict) \
            else {}
        if data["key"] not in _catalogue(f"team.{DEFAULT}") or any(v is _BAD
                                                                   for v in values.values()):
            return None
        return cls(data["key"], values)


Text = str | Phrase  # what a core service hands on for people to read


def in_language(text: Text, language: str | None = None) -> str:
    """A text a service handed on, for a reader of `language`."""
    return text.render(language) if isinstance(text, Phrase) else text


def customer_label(name: str | None, customer_id: int) -> Text:
    """How the team calls a customer: their name, else "customer #12" in the reader's
    language."""
    return name or Phrase("customer_number", id=customer_id)


def _value(value: Any, lang: str) -> Any:
    if isinstance(value, Phrase | Label):
        return value.render(lang)
    if isinstance(value, Size):
        return size(value, lang)
    if isinstance(value, datetime):
        return moment(value, lang)
    return value


def _to_json(value: Any) -> Any:
    if isinstance(value, Phrase):
        return {"phrase": value.to_json()}
    if isinstance(value, Label):
        return {"label": value.texts}
    if isinstance(value, Size):
        return {"size": int(value)}
    if isinstance(value, datetime):
        return {"at": value.isoformat()}
    if isinstance(value, str | int | float) or value is None:
        return value
    return str(value)


_BAD = object()  # a value `_from_json` cannot read back


def _from_json(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "phrase" in value:
        return Phrase.from_json(value["phrase"]) or _BAD
    if isinstance(value.get("label"), dict) and value["label"]:
        return Label({str(k): str(v) for k, v in value["label"].items()})
    if isinstance(value.get("size"), int):
        return Size(value["size"])
    if isinstance(value.get("at"), str):
        try:
            return datetime.fromisoformat(value["at"])
        except ValueError:
            return _BAD
    return _BAD
