"""What a customer's message asks of the bot, on any channel: pure functions, no I/O.

Each channel has its own triggers for the same intents (README, "What customers can say"):

- Telegram: commands (`/start [payload]`, `/stop [all]`, `/help`, `/menu`, `/language [en|ru]`,
  `/talk`, …) and buttons, whose data is the `action` of one of our Choices.
- SMS: a message that is just a keyword (STOP, START, HELP, LANG RU, AGENT, …, and the Russian
  words), case, spaces and punctuation ignored; "please stop calling me" is a message for a
  manager, not an opt-out. YES / ДА mean START only in answer to our stop confirmation.
- Email: a first line, or a subject of its own (not "Re: …"), that is just a keyword. Stop and
  start have their own short list by email (stop, unsubscribe, start, subscribe, and the Russian
  words: "Cancel" as a subject is about an order); they act even in a mail that says more, which
  then also reaches the managers. Help, language and agent count only in a mail that says
  nothing else. Mail to the List-Unsubscribe mailto address is a stop.
- SMS and email: a bare number answering the numbered choices the bot sent last (within a day,
  and only if the channel showed the numbers); Telegram: a typed label of a button (the
  survey's 1–5).
- Web chat: buttons, like Telegram's (a typed label of one too); and a message that is just a
  keyword, as by SMS, except that stop and start have the short list of email: in a chat,
  "cancel" or "end" is more likely about an order than about our news.

An intent is recognised only if the dialogue has a handler for it (`enabled`): bot/orders.py
plugs in ORDERS ("ORDERS", `/orders`), ORDER ("ORDER A-1042", `/order A-1042`) and
NOTIFICATIONS (order updates: "UPDATES OFF|ON", "УВЕДОМЛЕНИЯ ВЫКЛ|ВКЛ", `/notifications off|on`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from crm.orders import numbers
from crm.types import Channel, Choice, ConsentSource, InboundMessage


class Intent(StrEnum):
    GREET = "greet"  # Telegram /start: the greeting and the menu; its payload is a lead source
    MENU = "menu"
    HELP = "help"
    STOP = "stop"  # marketing off on this channel (by SMS: every message, as carriers require)
    STOP_ALL = "stop_all"  # marketing off on every channel
    START = "start"  # on again, on this channel
    LANGUAGE = "language"  # arg: "en" or "ru"; none: ask
    TALK = "talk"  # talk to a person
    RATE = "rate"  # arg: 1…5, the survey's answer
    PHONE = "phone"  # Telegram: offer the share-my-number button
    CONTACT = "contact"  # Telegram: a shared contact card
    ORDERS = "orders"  # the customer's orders (the orders issue)
    ORDER = "order"  # arg: an order number (the orders issue)
    NOTIFICATIONS = "notifications"  # arg: "off", "on"; none: ask (order updates)
    UNKNOWN = "unknown"  # a Telegram command we do not know


# Intents that speak about consent: their source is kept with the change.
CONSENT_INTENTS = frozenset({Intent.STOP, Intent.STOP_ALL, Intent.START})


@dataclass(frozen=True, slots=True)
class Recognised:
    intent: Intent
    arg: str = ""
    language: str | None = None  # the language of the word itself: СТОП is Russian
    source: ConsentSource = ConsentSource.KEYWORD
    # The message says more than its trigger: it is routed to the managers as well.
    more: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    """What recognition needs to know besides the message."""

    enabled: frozenset[Intent]
    after_stop: bool = False  # the bot's last word on this channel confirmed a STOP: YES starts
    choices: tuple[Choice, ...] = ()  # the numbered choices the bot sent last, if unanswered
    unsubscribe_address: str | None = None  # email: the List-Unsubscribe mailto address


def action(intent: Intent, arg: str = "") -> str:
    """The data of a button (or a numbered choice) that means `intent`: "language:ru"."""
    return f"{intent.value}:{arg}" if arg else intent.value


# Buttons sent before the actions were named after intents.
_LEGACY_ACTIONS = {"menu:talk": "talk", "menu:orders": "orders", "menu:phone": "phone",
                   "menu:help": "help", "menu:optin": "start"}

_COMMANDS: dict[str, Intent] = {
    "start": Intent.GREET, "menu": Intent.MENU, "help": Intent.HELP, "stop": Intent.STOP,
    "stopall": Intent.STOP_ALL, "subscribe": Intent.START, "unsubscribe": Intent.STOP,
    "language": Intent.LANGUAGE, "lang": Intent.LANGUAGE, "talk": Intent.TALK,
    "human": Intent.TALK, "operator": Intent.TALK, "manager": Intent.TALK,
    "orders": Intent.ORDERS, "order": Intent.ORDER, "contact": Intent.CONTACT,
    "notifications": Intent.NOTIFICATIONS, "updates": Intent.NOTIFICATIONS,
}

_WORDS: dict[Intent, dict[str, tuple[str, ...]]] = {
    Intent.STOP: {"en": ("STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"),
                  "ru": ("СТОП", "ОТПИСАТЬСЯ", "ОТПИСКА", "ОТМЕНА", "ХВАТИТ")},
    Intent.STOP_ALL: {"en": ("STOPALL",), "ru": ("СТОПВСЕ", "ОТПИСАТЬСЯОТВСЕГО")},
    Intent.START: {"en": ("START", "UNSTOP", "SUBSCRIBE"), "ru": ("СТАРТ", "ПОДПИСАТЬСЯ")},
    Intent.HELP: {"en": ("HELP", "INFO"), "ru": ("ПОМОЩЬ", "СПРАВКА", "ИНФО")},
    Intent.MENU: {"en": ("MENU",), "ru": ("МЕНЮ",)},
    Intent.TALK: {"en": ("AGENT", "HUMAN", "OPERATOR", "PERSON", "MANAGER", "TALKTOAPERSON",
                         "TALKTOAHUMAN", "REPRESENTATIVE"),
                  "ru": ("ОПЕРАТОР", "МЕНЕДЖЕР", "ЧЕЛОВЕК", "ЖИВОЙЧЕЛОВЕК")},
    Intent.ORDERS: {"en": ("ORDERS", "MYORDERS"), "ru": ("ЗАКАЗЫ", "МОИЗАКАЗЫ")},
}
# Order updates on or off, by SMS and email: "UPDATES OFF", "уведомления выкл".
_SWITCH = {"OFF": "off", "ON": "on", "ВЫКЛ": "off", "ВКЛ": "on", "STOP": "off", "START": "on",
           "ОТКЛ": "off", "ВЫКЛЮЧИТЬ": "off", "ВКЛЮЧИТЬ": "on"}
_NOTIFY_WORDS = {"UPDATES": "en", "NOTIFICATIONS": "en", "ORDERUPDATES": "en",
                 "УВЕДОМЛЕНИЯ": "ru"}
_KEYWORDS: dict[str, tuple[Intent, str]] = {
    word: (intent, lang) for intent, by_lang in _WORDS.items()
    for lang, words in by_lang.items() for word in words}
_YES = {"YES": "en", "Y": "en", "ДА": "ru"}
# By email, stop and start have a short list of their own, and act even in a mail that says more
# (which then reaches the managers too); any other keyword counts only in a mail that says
# nothing else: "Help" or "Cancel" as the subject of a question is a question.
_EMAIL_CONSENT: dict[str, tuple[Intent, str]] = {
    "STOP": (Intent.STOP, "en"), "UNSUBSCRIBE": (Intent.STOP, "en"),
    "СТОП": (Intent.STOP, "ru"), "ОТПИСАТЬСЯ": (Intent.STOP, "ru"),
    "STOPALL": (Intent.STOP_ALL, "en"), "СТОПВСЕ": (Intent.STOP_ALL, "ru"),
    "START": (Intent.START, "en"), "SUBSCRIBE": (Intent.START, "en"),
    "СТАРТ": (Intent.START, "ru"), "ПОДПИСАТЬСЯ": (Intent.START, "ru"),
}
_EMAIL_ALWAYS = frozenset({Intent.ORDER, Intent.ORDERS})
_LANGUAGE_WORDS = ("LANGUAGE", "LANG", "ЯЗЫК")
_LANGUAGES = {"EN": "en", "ENG": "en", "ENGLISH": "en", "АНГЛИЙСКИЙ": "en", "RU": "ru",
              "RUS": "ru", "RUSSIAN": "ru", "РУС": "ru", "РУССКИЙ": "ru"}
# "order 1042", "ORDER #A-77", "заказ №15": an order number holds a digit ("order status" is
# a question for a person).
_ORDER = re.compile(rf"^\s*(order|заказ)\s*(?:№|#|no\.?)?\s*({numbers.PATTERN})"
                    r"\s*[.!?]?\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*#?\s*(\d{1,2})\s*[.)!]?\s*$")
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fwd?|aw|sv|wg|ответ|отв|пересл)\s*(\[\d+\])?\s*:\s*)+",
                             re.IGNORECASE)
MAX_KEYWORD_LENGTH = 40
_GATEWAY_KEYWORDS = {"STOP": Intent.STOP, "START": Intent.START, "HELP": Intent.HELP}


def normalize(text: str) -> str:
    """`" Stop! "` -> `STOP`, `"opt-out"` -> `OPTOUT`: case, spaces, punctuation and Ё ignored."""
    return re.sub(r"[\W_]+", "", text).upper().replace("Ё", "Е")


def keyword(text: str, *, after_stop: bool = False) -> Recognised | None:
    """The keyword `text` is as a whole, or None for an ordinary message."""
    if len(text) > MAX_KEYWORD_LENGTH:
        return None
    order = _ORDER.match(text)
    if order is not None:
        lang = "ru" if order.group(1).lower() == "заказ" else "en"
        # "order 1042." ends a sentence: the dot is not part of the number.
        return Recognised(Intent.ORDER, order.group(2).rstrip("."), lang)
    word = normalize(text)
    if not word:
        return None
    found = _KEYWORDS.get(word)
    if found is not None:
        return Recognised(found[0], language=found[1])
    for prefix, lang in _NOTIFY_WORDS.items():
        if word.startswith(prefix) and word.removeprefix(prefix) in _SWITCH:
            return Recognised(Intent.NOTIFICATIONS, _SWITCH[word.removeprefix(prefix)], lang)
    if after_stop and word in _YES:  # "Reply YES to get them again", as carriers allow
        return Recognised(Intent.START, language=_YES[word])
    for prefix in _LANGUAGE_WORDS:
        if word.startswith(prefix):
            rest = word.removeprefix(prefix)
            lang = "ru" if prefix == "ЯЗЫК" else "en"
            if not rest:
                return Recognised(Intent.LANGUAGE, language=lang)
            if rest in _LANGUAGES:
                return Recognised(Intent.LANGUAGE, _LANGUAGES[rest], language=lang)
    return None


def button(data: str) -> Recognised | None:
    """A pressed button's data (our own Choice action) as an intent."""
    data = _LEGACY_ACTIONS.get(data, data)
    name, _, arg = data.partition(":")
    try:
        intent = Intent(name)
    except ValueError:
        return None
    return Recognised(intent, arg, source=ConsentSource.BUTTON)


def command(name: str, args: str) -> Recognised:
    """A Telegram command (`/stop all` -> STOP_ALL) as an intent; unknown ones say so."""
    intent = _COMMANDS.get(name, Intent.UNKNOWN)
    arg = args.strip()
    if intent is Intent.STOP and normalize(arg) in ("ALL", "ВСЕ", "EVERYWHERE", "ВЕЗДЕ"):
        intent, arg = Intent.STOP_ALL, ""
    elif intent is Intent.LANGUAGE:
        arg = _LANGUAGES.get(normalize(arg), "")
    elif intent is Intent.NOTIFICATIONS:
        arg = _SWITCH.get(normalize(arg), "")
    return Recognised(intent, arg[:200], source=ConsentSource.COMMAND)


def choice_number(text: str, choices: Sequence[Choice], *,
                  by_label: bool = False) -> Recognised | None:
    """A bare number picking one of the numbered `choices` (those a channel can show); with
    `by_label` (buttons, which show no numbers) only a number that is a button's label."""
    match = _NUMBER.match(text)
    shown = [c for c in choices if c.request is None]
    if match is None or not shown:
        return None
    index = int(match.group(1))
    if by_label:
        picked = next((c for c in shown if c.label.strip() == str(index)), None)
    else:
        picked = shown[index - 1] if 1 <= index <= len(shown) else None
    if picked is None:
        return None
    found = button(picked.action)
    return None if found is None else Recognised(found.intent, found.arg, found.language,
                                                 ConsentSource.BUTTON)


def _email(msg: InboundMessage, ctx: Context) -> Recognised | None:
    to = " ".join(str(msg.headers.get(k) or "") for k in ("to", "cc", "delivered_to")).lower()
    if ctx.unsubscribe_address and ctx.unsubscribe_address.lower() in to:
        return Recognised(Intent.STOP, source=ConsentSource.EMAIL)
    body = msg.text.strip()
    first, _, rest = body.partition("\n")
    picked = choice_number(first, ctx.choices) if not rest.strip() else None
    if picked is not None:
        return picked
    subject = str(msg.headers.get("subject") or "").strip()
    # The first line first: a reply "subscribe" in a thread whose subject is "Re: unsubscribe"
    # is a start. A subject counts only as one of its own, not a reply's "Re: …".
    lines = [(first, bool(rest.strip()))]
    if not _SUBJECT_PREFIX.match(subject):
        lines.append((subject, bool(body)))
    for line, more in lines:
        word = normalize(line) if len(line) <= MAX_KEYWORD_LENGTH else ""
        if word in _EMAIL_CONSENT:
            intent, lang = _EMAIL_CONSENT[word]
            return Recognised(intent, language=lang, more=more)
        found = keyword(line)
        if found is not None and found.intent not in CONSENT_INTENTS and (
                found.intent in _EMAIL_ALWAYS or not more):
            return Recognised(found.intent, found.arg, found.language, more=more)
    return None


def _webchat(msg: InboundMessage, ctx: Context) -> Recognised | None:
    picked = choice_number(msg.text, ctx.choices, by_label=True)
    if picked is not None:
        return picked
    word = normalize(msg.text) if len(msg.text) <= MAX_KEYWORD_LENGTH else ""
    if word in _EMAIL_CONSENT:
        intent, lang = _EMAIL_CONSENT[word]
        return Recognised(intent, language=lang)
    found = keyword(msg.text)
    return found if found is not None and found.intent not in CONSENT_INTENTS else None


def needs_history(msg: InboundMessage) -> bool:
    """Whether recognising `msg` depends on what the bot said last (a YES after a stop, a
    number after numbered choices): most messages do not, and then the dialogue looks nothing
    up before storing them."""
    if msg.automated or msg.action is not None or msg.command is not None:
        return False
    first = msg.text.strip().partition("\n")[0]
    yes = len(msg.text) <= MAX_KEYWORD_LENGTH and normalize(msg.text) in _YES
    return yes or _NUMBER.match(first) is not None


def recognise(msg: InboundMessage, ctx: Context) -> Recognised | None:
    """The intent of a customer's message on its channel, or None: a message for a person."""
    if msg.automated:
        return None  # auto-replies and bounces never ask anything of us
    found: Recognised | None
    gateway = _GATEWAY_KEYWORDS.get(str(msg.headers.get("gateway_keyword") or "").upper())
    if gateway is not None:
        # The SMS provider acted on its own keyword list (Twilio's Advanced Opt-Out): the
        # consent follows it, whatever the words were.
        found = Recognised(gateway, source=ConsentSource.GATEWAY)
    elif msg.action is not None:
        found = button(msg.action)
    elif msg.command is not None:
        found = command(msg.command, msg.text.partition(" ")[2])
    elif msg.channel is Channel.EMAIL:
        found = _email(msg, ctx)
    elif msg.channel is Channel.TELEGRAM:
        found = choice_number(msg.text, ctx.choices, by_label=True)
    elif msg.channel is Channel.WEBCHAT:
        found = _webchat(msg, ctx)
    else:  # SMS, and the test channel that stands in for text channels
        found = choice_number(msg.text, ctx.choices) or keyword(msg.text,
                                                                after_stop=ctx.after_stop)
    if found is not None and found.intent in ctx.enabled:
        return found
    if msg.action is not None or msg.command is not None:
        # A command or button for nothing we offer (an old button, /orders before orders):
        # answered as unknown, never passed to the managers as if the customer typed it.
        return Recognised(Intent.UNKNOWN, source=ConsentSource.COMMAND)
    return None
