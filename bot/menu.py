"""The dialogue's choices and per-channel texts, as channel-neutral values.

Choices are `crm.types.Choice`: Telegram shows them as buttons, SMS and email as numbered lines
(a bare number answers them), the web chat as buttons. The web chat has no commands to type, so
its menu also holds the way to stop our news and offers. Texts that name a channel's own way to do
something (`/stop` in Telegram, STOP by SMS, "unsubscribe" by email) have one variant per
channel in crm/locales.
"""

from __future__ import annotations

from bot.intents import Intent, Recognised, action
from crm.i18n import LANGUAGES, t
from crm.types import Channel, Choice

LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}


def main_menu(channel: Channel, language: str, *, opted_out: bool,
              enabled: frozenset[Intent]) -> tuple[Choice, ...]:
    items = [Choice(action(Intent.TALK), t("menu_talk", language))]
    if Intent.ORDERS in enabled:
        items.append(Choice(action(Intent.ORDERS), t("menu_orders", language)))
    if channel is Channel.TELEGRAM:  # SMS has the number already; email has no button for it
        items.append(Choice(action(Intent.PHONE), t("menu_phone", language)))
    if channel in (Channel.TELEGRAM, Channel.WEBCHAT):
        items.append(Choice(action(Intent.HELP), t("menu_help", language)))
    items.append(Choice(action(Intent.LANGUAGE), t("menu_language", language)))
    if opted_out:
        items.append(Choice(action(Intent.START), t("menu_optin", language)))
    elif channel is Channel.WEBCHAT:
        items.append(Choice(action(Intent.STOP), t("menu_stop", language)))
    return tuple(items)


def languages() -> tuple[Choice, ...]:
    return tuple(Choice(action(Intent.LANGUAGE, code), LANGUAGE_NAMES[code])
                 for code in LANGUAGES)


def stop_everywhere(language: str) -> Choice:
    return Choice(action(Intent.STOP_ALL), t("menu_stop_everywhere", language))


def share_phone(language: str) -> Choice:
    return Choice(action(Intent.CONTACT), t("menu_phone", language), request="phone")


def label(found: Recognised, language: str) -> str | None:
    """What a pressed button said, for the timeline: "Talk to a manager", not "talk"."""
    keys = {Intent.TALK: "menu_talk", Intent.ORDERS: "menu_orders", Intent.PHONE: "menu_phone",
            Intent.HELP: "menu_help", Intent.LANGUAGE: "menu_language",
            Intent.START: "menu_optin", Intent.STOP_ALL: "menu_stop_everywhere",
            Intent.STOP: "menu_stop", Intent.MENU: "menu_open"}
    if found.intent is Intent.LANGUAGE and found.arg in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[found.arg]
    if found.intent in (Intent.RATE, Intent.ORDER):
        return found.arg
    if found.intent is Intent.NOTIFICATIONS and found.arg in ("on", "off"):
        return t(f"menu_notifications_{found.arg}", language)
    key = keys.get(found.intent)
    return t(key, language) if key else None


def _per_channel(key: str, channel: Channel, language: str, company: str) -> str:
    """`key_telegram`, `key_sms`, `key_email` …, or `key` for a channel without its own."""
    for candidate in (f"{key}_{channel.value}", key):
        try:
            return t(candidate, language, company=company)
        except KeyError:
            continue
    raise KeyError(f"no text {key!r} in crm/locales")


def help_text(channel: Channel, language: str, company: str) -> str:
    return _per_channel("help", channel, language, company)


def opted_out_text(channel: Channel, language: str, company: str) -> str:
    return _per_channel("opted_out", channel, language, company)


def opted_in_text(channel: Channel, language: str, company: str) -> str:
    return _per_channel("opted_in", channel, language, company)
