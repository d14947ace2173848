"""What a customer's message asks, per channel's triggers, in English and Russian (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.intents import Context, Intent, Recognised, button, command, keyword, recognise
from crm.orders.numbers import InvalidOrder, check_number
from crm.types import Channel, Choice, ConsentSource, InboundMessage

ALL = frozenset(Intent)
WITHOUT_ORDERS = ALL - {Intent.ORDERS, Intent.ORDER}


def ctx(**kw: Any) -> Context:
    return Context(kw.pop("enabled", WITHOUT_ORDERS), **kw)


def msg(channel: Channel, text: str = "", **kw: Any) -> InboundMessage:
    return InboundMessage(channel, "x-1", "+12025550101" if channel is Channel.SMS else "42",
                          text=text, **kw)


@pytest.mark.parametrize(("text", "intent", "language"), [
    ("STOP", Intent.STOP, "en"), ("stop", Intent.STOP, "en"), (" Stop! ", Intent.STOP, "en"),
    ("Unsubscribe", Intent.STOP, "en"), ("cancel", Intent.STOP, "en"),
    ("END", Intent.STOP, "en"), ("quit.", Intent.STOP, "en"), ("opt-out", Intent.STOP, "en"),
    ("S.T.O.P", Intent.STOP, "en"),
    ("STOPALL", Intent.STOP_ALL, "en"), ("stop all", Intent.STOP_ALL, "en"),
    ("СТОП", Intent.STOP, "ru"), ("стоп", Intent.STOP, "ru"), ("Отписаться", Intent.STOP, "ru"),
    ("START", Intent.START, "en"), ("unstop", Intent.START, "en"),
    ("старт", Intent.START, "ru"),
    ("HELP", Intent.HELP, "en"), ("info", Intent.HELP, "en"), ("Помощь", Intent.HELP, "ru"),
    ("Agent", Intent.TALK, "en"), ("talk to a person", Intent.TALK, "en"),
    ("оператор", Intent.TALK, "ru"), ("menu", Intent.MENU, "en"),
])
def test_keywords(text: str, intent: Intent, language: str) -> None:
    found = keyword(text)
    assert found is not None and (found.intent, found.language) == (intent, language)


@pytest.mark.parametrize(("text", "arg"), [
    ("LANG RU", "ru"), ("lang en", "en"), ("Language: Russian", "ru"), ("ЯЗЫК РУССКИЙ", "ru"),
    ("язык en", "en"), ("LANG", ""),
])
def test_language_keyword(text: str, arg: str) -> None:
    assert keyword(text) == Recognised(Intent.LANGUAGE, arg,
                                       "ru" if text.lower().startswith("язык") else "en")


@pytest.mark.parametrize("text", [
    "please stop calling me", "stop it, I already paid", "How do I cancel my order?",
    "I need help", "", "   ", "stopped", "Yes", "да", "LANG XX", "language is hard",
])
def test_ordinary_messages_are_not_keywords(text: str) -> None:
    assert keyword(text) is None


def test_yes_means_start_only_in_answer_to_the_stop_confirmation() -> None:
    assert keyword("yes") is None  # an answer to a manager's question
    found = keyword("YES", after_stop=True)
    assert found is not None and found.intent is Intent.START
    found = keyword("Да", after_stop=True)
    assert found is not None and (found.intent, found.language) == (Intent.START, "ru")
    assert recognise(msg(Channel.SMS, "Yes"), ctx(after_stop=True)) is not None
    assert recognise(msg(Channel.EMAIL, "Yes"), ctx(after_stop=True)) is None  # never by mail


def test_order_numbers_are_words_for_the_orders_issue() -> None:
    assert keyword("order 1042") == Recognised(Intent.ORDER, "1042", "en")
    assert keyword("Заказ №A-77") == Recognised(Intent.ORDER, "A-77", "ru")
    # …recognised only once something handles them: until then a message for a person.
    assert recognise(msg(Channel.SMS, "ORDER 1042"), ctx()) is None
    assert recognise(msg(Channel.SMS, "ORDER 1042"), ctx(enabled=ALL)) is not None


@pytest.mark.parametrize(("name", "args", "intent", "arg"), [
    ("start", "spring_ad", Intent.GREET, "spring_ad"), ("stop", "", Intent.STOP, ""),
    ("stop", "all", Intent.STOP_ALL, ""), ("help", "", Intent.HELP, ""),
    ("language", "ru", Intent.LANGUAGE, "ru"), ("language", "", Intent.LANGUAGE, ""),
    ("language", "klingon", Intent.LANGUAGE, ""), ("talk", "", Intent.TALK, ""),
    ("whatever", "", Intent.UNKNOWN, ""),
])
def test_telegram_commands(name: str, args: str, intent: Intent, arg: str) -> None:
    assert command(name, args) == Recognised(intent, arg, source=ConsentSource.COMMAND)


def test_telegram_commands_for_what_we_do_not_offer_are_unknown_not_routed() -> None:
    found = recognise(msg(Channel.TELEGRAM, "/orders", command="orders"), ctx())
    assert found is not None and found.intent is Intent.UNKNOWN


@pytest.mark.parametrize(("data", "intent", "arg"), [
    ("talk", Intent.TALK, ""), ("language:ru", Intent.LANGUAGE, "ru"),
    ("rate:4", Intent.RATE, "4"), ("stop_all", Intent.STOP_ALL, ""),
    ("menu:talk", Intent.TALK, ""), ("menu:optin", Intent.START, ""),  # buttons sent earlier
])
def test_buttons(data: str, intent: Intent, arg: str) -> None:
    assert button(data) == Recognised(intent, arg, source=ConsentSource.BUTTON)


def test_keywords_by_telegram_are_messages_for_a_person() -> None:
    assert recognise(msg(Channel.TELEGRAM, "stop"), ctx()) is None


def test_a_number_answers_the_last_numbered_choices_on_any_channel() -> None:
    choices = (Choice("talk", "Talk to a manager"), Choice("contact", "Phone", request="phone"),
               Choice("language", "Language"))
    found = recognise(msg(Channel.SMS, "2"), ctx(choices=choices))
    assert found is not None and found.intent is Intent.LANGUAGE  # the phone button is not shown
    assert recognise(msg(Channel.SMS, "3"), ctx(choices=choices)) is None
    assert recognise(msg(Channel.SMS, "2"), ctx()) is None  # nothing asked: a message
    survey = tuple(Choice(f"rate:{n}", str(n)) for n in range(1, 6))
    found = recognise(msg(Channel.TELEGRAM, "5"), ctx(choices=survey))
    assert found == Recognised(Intent.RATE, "5", None, ConsentSource.BUTTON)


def test_email_subject_or_first_line() -> None:
    stop = recognise(msg(Channel.EMAIL, "", headers={"subject": "Unsubscribe"}), ctx())
    assert stop is not None and (stop.intent, stop.more) == (Intent.STOP, False)
    first = recognise(msg(Channel.EMAIL, "stop\n"), ctx())
    assert first is not None and first.intent is Intent.STOP
    # An opt-out in a mail that says more: applied, and the mail still reaches a manager.
    more = recognise(msg(Channel.EMAIL, "Stop sending me these.\nAlso, where is my refund?",
                         headers={"subject": "unsubscribe"}), ctx())
    assert more is not None and (more.intent, more.more) == (Intent.STOP, True)
    # Other keywords count only when the mail says nothing else.
    assert recognise(msg(Channel.EMAIL, "My order is late", headers={"subject": "Help"}),
                     ctx()) is None
    just = recognise(msg(Channel.EMAIL, "", headers={"subject": "help"}), ctx())
    assert just is not None and just.intent is Intent.HELP
    lang = recognise(msg(Channel.EMAIL, "LANG RU", headers={"subject": "Re: Your request"}),
                     ctx())
    assert lang is not None and (lang.intent, lang.arg) == (Intent.LANGUAGE, "ru")
    assert recognise(msg(Channel.EMAIL, "Please stop calling me, write instead",
                         headers={"subject": "Calls"}), ctx()) is None


def test_mail_to_the_unsubscribe_address() -> None:
    found = recognise(msg(Channel.EMAIL, "This message will unsubscribe you", headers={
        "to": "Support <Support+Unsubscribe@Example.com>", "subject": "unsubscribe me"}),
        ctx(unsubscribe_address="support+unsubscribe@example.com"))
    assert found is not None and (found.intent, found.source) == (Intent.STOP,
                                                                  ConsentSource.EMAIL)


def test_automated_mail_asks_nothing() -> None:
    assert recognise(msg(Channel.EMAIL, "STOP", automated=True), ctx()) is None


@pytest.mark.parametrize(("subject", "body", "intent"), [
    ("Cancel", "Please cancel my order 5512", None),  # SMS's CANCEL is no email keyword
    ("Re: End", "When does the sale end?", None),
    # Answering our confirmation (its subject "Re: unsubscribe") the way it says: a start.
    ("Re: unsubscribe", "subscribe", Intent.START),
    ("Re: Subscribe", "stop", Intent.STOP),  # the first line wins over the thread's subject
    ("Re: Unsubscribe", "Thanks, and where is my refund?", None),  # a later reply in a thread
    ("Fwd: stop", "", None),
    ("Стоп", "", Intent.STOP),
])
def test_email_keywords_by_the_review(subject: str, body: str, intent: Intent | None) -> None:
    found = recognise(msg(Channel.EMAIL, body, headers={"subject": subject}), ctx())
    assert (found.intent if found else None) is intent


def test_telegram_numbers_count_only_as_a_button_s_label() -> None:
    menu = (Choice("talk", "Talk to a manager"), Choice("language", "Language"))
    assert recognise(msg(Channel.TELEGRAM, "2"), ctx(choices=menu)) is None
    survey = tuple(Choice(f"rate:{n}", str(n)) for n in range(1, 6))
    found = recognise(msg(Channel.TELEGRAM, "4"), ctx(choices=survey))
    assert found is not None and (found.intent, found.arg) == (Intent.RATE, "4")


def test_the_gateway_s_own_keyword_decides() -> None:
    """Twilio's Advanced Opt-Out may know words we do not: its OptOutType is what counts."""
    found = recognise(msg(Channel.SMS, "ARRET", headers={"gateway_keyword": "STOP"}), ctx())
    assert found == Recognised(Intent.STOP, source=ConsentSource.GATEWAY)


@pytest.mark.parametrize(("text", "arg", "language"), [
    ("UPDATES OFF", "off", "en"), ("updates on", "on", "en"), ("Notifications off!", "off", "en"),
    ("Уведомления выкл", "off", "ru"), ("УВЕДОМЛЕНИЯ ВКЛ", "on", "ru"),
])
def test_order_updates_on_and_off_by_keyword(text: str, arg: str, language: str) -> None:
    found = keyword(text)
    assert found is not None and found.intent is Intent.NOTIFICATIONS
    assert (found.arg, found.language) == (arg, language)


def test_order_commands_and_words() -> None:
    assert command("notifications", "off").arg == "off"
    assert command("notifications", "").arg == ""
    assert command("order", "A-7").intent is Intent.ORDER
    assert keyword("ЗАКАЗЫ") == Recognised(Intent.ORDERS, language="ru")
    found = keyword("заказ №1042")
    assert found is not None and (found.intent, found.arg, found.language) == (
        Intent.ORDER, "1042", "ru")
    assert keyword("updates") is None  # a word of a sentence, not a switch


def test_order_numbers_in_messages_follow_the_orders_own_rule() -> None:
    assert keyword("ORDER 2026.15") == Recognised(Intent.ORDER, "2026.15", "en")
    assert keyword("order 1042.") == Recognised(Intent.ORDER, "1042", "en")
    assert keyword("заказ №З-15") == Recognised(Intent.ORDER, "З-15", "ru")
    with pytest.raises(InvalidOrder):  # "ß" upper-cases to "SS": the key would not fit
        check_number("ß" * 39 + "1")
    assert check_number(" #A-1042. ") == "A-1042"


@pytest.mark.parametrize(("text", "intent"), [
    ("Stop", Intent.STOP), ("unsubscribe!", Intent.STOP), ("СТОП", Intent.STOP),
    ("stopall", Intent.STOP_ALL), ("start", Intent.START), ("Подписаться", Intent.START),
    ("help", Intent.HELP), ("menu", Intent.MENU), ("LANG RU", Intent.LANGUAGE),
    ("operator", Intent.TALK), ("my orders", Intent.ORDERS), ("order A-1042", Intent.ORDER),
    ("updates off", Intent.NOTIFICATIONS),
])
def test_web_chat_reads_the_words_of_email_as_a_whole_message(text: str,
                                                              intent: Intent) -> None:
    found = recognise(msg(Channel.WEBCHAT, text), ctx(enabled=ALL))
    assert found is not None and found.intent is intent


@pytest.mark.parametrize("text", ["Cancel", "END", "quit", "yes", "please stop the order",
                                  "help me with sizes"])
def test_in_a_web_chat_cancel_and_end_are_questions(text: str) -> None:
    """The SMS list that carriers impose (CANCEL, END, QUIT, YES after a stop) is no opt-out
    in a chat, where "cancel" is about an order; nor is a sentence that holds a keyword."""
    assert recognise(msg(Channel.WEBCHAT, text), ctx(enabled=ALL, after_stop=True)) is None


def test_web_chat_buttons_and_their_typed_labels() -> None:
    pressed = recognise(msg(Channel.WEBCHAT, action="stop"), ctx())
    assert pressed == Recognised(Intent.STOP, source=ConsentSource.BUTTON)
    survey = tuple(Choice(f"rate:{n}", str(n)) for n in range(1, 6))
    typed = recognise(msg(Channel.WEBCHAT, "4"), ctx(choices=survey))
    assert typed is not None and (typed.intent, typed.arg) == (Intent.RATE, "4")
    # A number that is no button's label is a message for a person.
    menu = (Choice("talk", "Talk to a manager"), Choice("help", "Help"))
    assert recognise(msg(Channel.WEBCHAT, "2"), ctx(choices=menu)) is None
