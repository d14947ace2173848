"""SMS keywords: STOP, START and HELP with their usual synonyms in English and Russian.

Pure: no I/O. A keyword is the whole message (case, surrounding spaces and a trailing full stop
or exclamation mark do not matter), as carriers and Twilio treat them; "please stop calling me"
is a message for a manager, not an opt-out. YES / ДА mean START only for a customer who opted
out: from anyone else they are ordinary answers to a manager's question.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


_STOP_EN = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE")
_STOP_RU = ("СТОП", "ОТПИСАТЬСЯ", "ОТПИСКА", "ОТМЕНА", "ХВАТИТ")
_START_EN = ("START", "UNSTOP", "SUBSCRIBE")
_START_RU = ("СТАРТ", "ПОДПИСАТЬСЯ")
_YES_EN, _YES_RU = ("YES",), ("ДА",)
_HELP_EN = ("HELP", "INFO")
_HELP_RU = ("ПОМОЩЬ", "СПРАВКА", "ИНФО")

_TABLE: dict[str, tuple[Keyword, str]] = {
    **{w: (Keyword.STOP, "en") for w in _STOP_EN},
    **{w: (Keyword.STOP, "ru") for w in _STOP_RU},
    **{w: (Keyword.START, "en") for w in _START_EN},
    **{w: (Keyword.START, "ru") for w in _START_RU},
    **{w: (Keyword.HELP, "en") for w in _HELP_EN},
    **{w: (Keyword.HELP, "ru") for w in _HELP_RU},
}
_YES: dict[str, str] = {**{w: "en" for w in _YES_EN}, **{w: "ru" for w in _YES_RU}}


@dataclass(frozen=True, slots=True)
class KeywordMatch:
    keyword: Keyword
    language: str  # the language of the word itself: en or ru


def normalize(text: str) -> str:
    """`" Stop! "` -> `STOP`, `"opt-out"` -> `OPTOUT`: spaces, hyphens, case and Ё do not count."""
    return "".join(text.split()).strip(".!").replace("-", "").upper().replace("Ё", "Е")


def match_keyword(text: str, *, opted_out: bool = False) -> KeywordMatch | None:
    """The keyword `text` is, or None for an ordinary message."""
    if len(text) > 40:
        return None
    word = normalize(text)
    found = _TABLE.get(word)
    if found is not None:
        return KeywordMatch(*found)
    if opted_out and word in _YES:
        return KeywordMatch(Keyword.START, _YES[word])
    return None
