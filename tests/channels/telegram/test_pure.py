"""The pure parts of the Telegram channel: normalising updates, splitting, escaping, limits."""

from __future__ import annotations

import json

import pytest
from telegram import Bot, InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove, Update
from yarl import URL

from bot.render import Entry, blocks, customer_ref, private_header
from channels.telegram.limits import Windows, is_group, per_recipient
from channels.telegram.normalize import command_of, to_inbound
from channels.telegram.sender import markup_of, recreated_header
from channels.telegram.text import MAX_TEXT, escape, escaped_pieces, pack, split_text, utf16_len
from channels.telegram.topics import topic_name
from channels.telegram.transport import env_proxy
from crm.models import Customer
from crm.types import Channel, Choice, Direction, OutboundMessage
from tests.support.telegram_double import check_html

BOT = Bot("123:abc")


def update(data: dict) -> Update:
    parsed = Update.de_json(json.loads(json.dumps(data)), BOT)
    assert parsed is not None
    return parsed


USER = {"id": 77, "is_bot": False, "first_name": "Ann", "last_name": "Lee",
        "language_code": "ru", "username": "ann"}
CHAT = {"id": 77, "type": "private", "first_name": "Ann"}


def test_text_message_becomes_an_inbound_message() -> None:
    msg = to_inbound(update({"update_id": 5, "message": {
        "message_id": 9, "date": 1_700_000_000, "chat": CHAT, "from": USER, "text": "Hi <b>"}}))
    assert msg is not None
    assert (msg.channel, msg.external_id, msg.sender, msg.text) == (
        Channel.TELEGRAM, "77:9", "77", "Hi <b>")
    assert msg.sender_name == "Ann Lee" and msg.language == "ru" and msg.command is None


def test_commands_photos_contacts_edits_and_buttons() -> None:
    start = to_inbound(update({"update_id": 1, "message": {
        "message_id": 1, "date": 0, "chat": CHAT, "from": USER, "text": "/start@crm_bot ad1",
        "entities": [{"type": "bot_command", "offset": 0, "length": 14}]}}), "crm_bot")
    assert start is not None and start.command == "start"
    photo = to_inbound(update({"update_id": 2, "message": {
        "message_id": 2, "date": 0, "chat": CHAT, "from": USER, "caption": "look",
        "photo": [{"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
                  {"file_id": "big", "file_unique_id": "b", "width": 900, "height": 900,
                   "file_size": 1234}]}}))
    assert photo is not None and photo.text == "look"
    assert photo.attachments[0].kind == "photo" and photo.attachments[0].file_id == "big"
    contact = to_inbound(update({"update_id": 3, "message": {
        "message_id": 3, "date": 0, "chat": CHAT, "from": USER,
        "contact": {"phone_number": "+15551234567", "first_name": "Ann", "user_id": 77}}}))
    assert contact is not None and contact.command == "contact"
    assert contact.attachments[0].meta["phone_number"] == "+15551234567"
    edit = to_inbound(update({"update_id": 4, "edited_message": {
        "message_id": 1, "date": 0, "edit_date": 10, "chat": CHAT, "from": USER,
        "text": "fixed"}}))
    assert edit is not None and edit.edit_of == "77:1" and edit.external_id == "77:1:edit:10"
    button = to_inbound(update({"update_id": 6, "callback_query": {
        "id": "q1", "from": USER, "chat_instance": "x", "data": "menu:help"}}))
    assert button is not None and button.action == "menu:help" and button.command is None
    assert button.external_id == "cb:q1"
    joined = to_inbound(update({"update_id": 7, "message": {
        "message_id": 4, "date": 0, "chat": CHAT, "from": USER, "new_chat_members": [USER]}}))
    assert joined is None


def test_command_of() -> None:
    assert command_of("/Start payload x") == ("start", "payload x")
    assert command_of("/via@crm_bot email hi", "crm_bot") == ("via", "email hi")
    assert command_of("/via@other_bot email", "crm_bot") is None
    assert command_of("hello /start") is None
    assert command_of("/") is None


def test_split_keeps_everything_and_fits_the_limit() -> None:
    text = "\n".join(f"paragraph {n} " + "word " * 50 for n in range(100))
    pieces = split_text(text)
    assert all(utf16_len(p) <= MAX_TEXT for p in pieces) and len(pieces) > 1
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())
    emoji = "😀" * 3000  # two UTF-16 units each
    pieces = split_text(emoji)
    assert all(utf16_len(p) <= MAX_TEXT for p in pieces) and "".join(pieces) == emoji
    assert split_text("short") == ["short"]


def test_escaping_survives_telegrams_html_parser() -> None:
    nasty = "<script>alert('x')</script> & <b>bold</b> &amp; 5 > 3"
    assert check_html(f"<b>{escape(nasty)}</b>") == nasty
    pieces = escaped_pieces("&" * 5000, 4000)
    assert all(utf16_len(p) <= 4000 for p in pieces)
    assert "".join(check_html(p) for p in pieces) == "&" * 5000


def test_rendered_blocks_are_valid_html_and_pack_under_the_limit() -> None:
    entry = Entry(Direction.IN, Channel.EMAIL, "<hi> & " * 2000, "Dora <d@x>",
                  attachments=["photo"], subject="Re: <order>")
    parts = pack(blocks(entry))
    assert len(parts) > 1
    for part in parts:
        assert utf16_len(part) <= MAX_TEXT
        check_html(part)
    assert "Dora &lt;d@x&gt;" in parts[0] and "✉️ email" in parts[0]


def test_private_header_carries_the_customer_id() -> None:
    assert customer_ref(check_html(private_header("Ann #c9 <x>", 42)) + "\nhello #c7") == 42
    assert customer_ref("<b>Ann</b> #c42\nhello") == 42
    assert customer_ref("no reference here") is None


def test_windows_keep_each_limit() -> None:
    windows = Windows(margin=1.0)

    def send(chat_id: str, at: float) -> bool:
        """A send at `at` if the windows let it go, answered at once."""
        if windows.wait(chat_id, at) > 0:
            return False
        windows.sent(chat_id, at, at)
        return True

    assert is_group("-100123") and not is_group("77")
    assert per_recipient("-1") == (20, 60.0) and per_recipient("5") == (1, 1.0)
    assert send("77", 0.0)
    assert windows.wait("77", 0.5) == 0.5  # one a second in a private chat
    assert send("77", 1.0)
    sent = sum(1 for n in range(30) if send(f"-{n % 2 + 1}", 1.5))
    assert sent == 29  # 30 a second for the bot, one of them already used at 1.0
    assert windows.wait("-3", 1.6) > 0
    windows = Windows(margin=1.0)
    assert sum(1 for n in range(25) if send("-9", n * 0.1)) == 20


def test_a_send_counts_until_answered_and_from_the_latest_it_can_have_arrived() -> None:
    windows = Windows(margin=1.0)
    assert windows.wait("5", 0.0) == 0
    windows.sent("5", 0.0, 0.01)  # the fastest round trip: 10 ms
    assert windows.wait("5", 1.0) == 0
    # Not answered yet: it may still be on its way, so the chat's one slot stays taken.
    assert windows.wait("5", 1.2) == 1.0
    # Answered at 1.3: it arrived 10 ms before at the latest, and counts from then, not from
    # when it left (held up on its way, it may have arrived just now).
    windows.sent("5", 1.0, 1.3)
    assert windows.wait("5", 2.0) == pytest.approx(0.29)
    assert windows.wait("5", 2.29) == 0


def test_choices_become_buttons_and_the_phone_request_a_contact_button() -> None:
    def message(*choices: Choice, **options: object) -> OutboundMessage:
        return OutboundMessage(Channel.TELEGRAM, "42", "hi", choices=choices, options=options)

    menu = markup_of(message(Choice("talk", "Talk to a manager"), Choice("language", "Язык")))
    assert isinstance(menu, InlineKeyboardMarkup)
    assert [[b.callback_data for b in row] for row in menu.inline_keyboard] == [
        ["talk"], ["language"]]
    survey = markup_of(message(*(Choice(f"rate:{n}", str(n)) for n in range(1, 6))))
    assert isinstance(survey, InlineKeyboardMarkup) and len(survey.inline_keyboard) == 1
    phone = markup_of(message(Choice("contact", "Share my number", request="phone")))
    assert isinstance(phone, ReplyKeyboardMarkup)
    assert phone.keyboard[0][0].request_contact is True
    assert isinstance(markup_of(message(close_keyboard=True)), ReplyKeyboardRemove)
    assert markup_of(message()) is None


def test_a_topic_without_a_name_and_a_recreated_topic_read_in_the_group_s_language() -> None:
    nameless = Customer(id=12, name=None)
    assert topic_name(nameless) == "Customer #12"
    assert topic_name(nameless, "ru") == "Клиент #12"
    assert topic_name(Customer(id=3, name="Ann"), "ru") == "Ann #3"
    assert "создана заново" in check_html(recreated_header("ru"))
    assert "was recreated" in recreated_header("en")


def test_the_bot_api_is_reached_through_the_proxy_the_environment_names(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("https_proxy", "http_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert env_proxy(URL("https://api.telegram.org/bot1:x/getMe")) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert env_proxy(URL("https://api.telegram.org/bot1:x/getMe")) == \
        "http://proxy.example:3128"
    assert env_proxy(URL("http://127.0.0.1:8081/bot1:x/getMe")) is None
