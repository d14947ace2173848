"""The managers' chat end to end: topics, replies, commands, private-chat mode, and each
reader's language (the group's in a topic, a manager's own in answers and private chats)."""

from __future__ import annotations

from crm.models import Conversation, CustomerTopic, Identity, Manager, Message
from crm.orders.service import CustomerRef, OrderInput
from crm.types import (
    Channel,
    ConsentKind,
    ConsentSource,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    InboundMessage,
)
from tests.support.telegram_double import GROUP, TelegramDouble, user
from tests.support.telegram_fixtures import ServiceFactory, add_manager


def topic_text(tg: TelegramDouble, thread: int | None = None) -> str:
    return "\n".join(s.text for s in tg.sent_to(GROUP, thread))


async def customer_topic(tg: TelegramDouble, customer: dict, text: str) -> int:
    """The customer writes; returns the thread id of their topic once the message is there."""
    tg.customer_says(customer, text)
    await tg.wait_for(lambda: text in topic_text(tg))
    return next(s.thread_id for s in tg.sent_to(GROUP) if text in s.text)


async def test_reply_in_topic_reaches_customer_is_in_timeline_and_shows_delivery(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9001, "Bob", "bob")
    ann = user(1001, "Ann")
    async with service():
        thread = await customer_topic(tg, ann, "where is my parcel?")
        reply = tg.manager_says(GROUP, bob, "It ships <today> & arrives Friday", thread)
        sent = await tg.wait_for(lambda: [s for s in tg.sent_to(1001) if "ships" in s.text])
        assert sent[0].text == "It ships <today> & arrives Friday"  # plain text, as written
        key = (GROUP, reply["message"]["message_id"])
        assert await tg.wait_for(lambda: tg.reactions.get(key)) == ["👍"]
    out = await Message.get(direction=Direction.OUT, author_kind="manager")
    assert out.text == "It ships <today> & arrives Friday"
    assert out.delivery_status is DeliveryStatus.SENT
    # The manager's own reply is not echoed back into the topic.
    assert "ships" not in topic_text(tg)


async def test_note_is_kept_and_never_reaches_the_customer(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9002, "Bob")
    ann = user(1002, "Ann")
    async with service():
        thread = await customer_topic(tg, ann, "hello")
        note = tg.manager_says(GROUP, bob, "/note VIP, offer 10% discount", thread)
        key = (GROUP, note["message"]["message_id"])
        await tg.wait_for(lambda: tg.reactions.get(key))
        tg.manager_says(GROUP, bob, "Hi Ann!", thread)
        await tg.wait_for(lambda: any("Hi Ann!" in s.text for s in tg.sent_to(1002)))
    assert not any("discount" in s.text for s in tg.sent_to(1002))
    stored = await Message.get(direction=Direction.NOTE)
    assert stored.text == "VIP, offer 10% discount"


async def test_assign_close_and_a_new_message_reopens_the_topic(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    bob_m, bob = await add_manager(9003, "Bob", "bob")
    carol_m, _ = await add_manager(9004, "Carol", "carol")
    ann = user(1003, "Ann")
    async with service():
        thread = await customer_topic(tg, ann, "question one")
        tg.manager_says(GROUP, bob, "/assign @carol", thread)
        await tg.wait_for(lambda: "assigned to Carol" in topic_text(tg, thread))
        conv = await Conversation.get()
        assert conv.assignee_id == carol_m.id
        tg.manager_says(GROUP, bob, "/close", thread)
        await tg.wait_for(lambda: tg.forums[GROUP][thread]["closed"])
        assert "closed by Bob" in topic_text(tg, thread)
        await conv.refresh_from_db()
        assert conv.status is ConversationStatus.CLOSED

        tg.customer_says(ann, "question two")
        await tg.wait_for(lambda: "question two" in topic_text(tg, thread))
        assert tg.forums[GROUP][thread]["closed"] is False
    await conv.refresh_from_db()
    assert conv.status is ConversationStatus.OPEN
    assert bob_m.id != carol_m.id


async def test_a_non_manager_cannot_command_and_is_ignored(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    stranger = user(4242, "Mallory")
    ann = user(1004, "Ann")
    async with service():
        thread = await customer_topic(tg, ann, "hello")
        tg.manager_says(GROUP, stranger, "/close", thread)
        tg.manager_says(GROUP, stranger, "you are hacked", thread)
        await tg.wait_consumed()
    assert (await Conversation.get()).status is ConversationStatus.OPEN
    assert not any("hacked" in s.text for s in tg.sent_to(1004))
    assert await Message.filter(direction=Direction.OUT, author_kind="manager").count() == 0
    assert "closed" not in topic_text(tg, thread)


async def test_a_deleted_topic_is_recreated_with_a_header(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    ann = user(1005, "Ann")
    async with service():
        old = await customer_topic(tg, ann, "first")
        tg.delete_topic(GROUP, old)
        tg.customer_says(ann, "after the topic was deleted")
        await tg.wait_for(lambda: "after the topic was deleted" in topic_text(tg))
    new = (await CustomerTopic.get()).thread_id
    assert new != old
    [message] = [s for s in tg.sent_to(GROUP, new) if "deleted" in s.text]
    assert "topic was recreated" in message.text
    assert any(code == 400 and "thread not found" in d for _, code, d in tg.rejected)


async def test_email_and_sms_messages_are_mirrored_too(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9005, "Bob")
    async with service() as app:
        assert app.core is not None
        await app.core.timeline.ingest(InboundMessage(
            Channel.EMAIL, "<m1@example.com>", "Dora <dora@example.com>", text="Invoice <b>?",
            sender_name="Dora", headers={"subject": "Invoice"}))
        await app.core.timeline.ingest(InboundMessage(
            Channel.SMS, "sms-1", "+14155550199", text="call me pls", sender_name=None))
        await tg.wait_for(lambda: "call me pls" in topic_text(tg))
        text = topic_text(tg)
        assert "✉️ email" in text and "Invoice &lt;b&gt;?" in text
        assert "📱 sms" in text
        thread = next(s.thread_id for s in tg.sent_to(GROUP) if "Invoice" in s.text)
        dora = (await Identity.get(address="dora@example.com")).customer_id
        await app.core.consent.change(dora, ConsentKind.MARKETING, False, channel=Channel.EMAIL,
                                      source=ConsentSource.KEYWORD, actor="customer")
        tg.manager_says(GROUP, bob, "/info", thread)
        await tg.wait_for(lambda: "dora@example.com" in topic_text(tg, thread))
    assert len(tg.forums[GROUP]) == 2
    # /info says what the customer agreed to, channel by channel.
    assert "marketing: email no (keyword, " in topic_text(tg, thread)
    assert "notifications: email yes (default)" in topic_text(tg, thread)


async def test_an_sms_sender_that_is_no_phone_number_comes_with_a_warning(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    async with service() as app:
        assert app.core is not None
        await app.core.timeline.ingest(InboundMessage(
            Channel.SMS, "sms-bank", "ACME-Bank", text="Payment received"))
        await app.core.timeline.ingest(InboundMessage(
            Channel.SMS, "sms-new", "+15557654321", text="new number, same me"))
        await tg.wait_for(lambda: "Payment received" in topic_text(tg)
                          and "same me" in topic_text(tg))
        bank = next(s for s in tg.sent_to(GROUP) if "Payment received" in s.text)
        assert "⚠️" in bank.text and "“ACME-Bank” is not a phone number" in bank.text
        assert "reply by SMS may not be possible" in bank.text
        number = next(s for s in tg.sent_to(GROUP) if "same me" in s.text)
        assert "⚠️" not in number.text


async def test_private_chat_mode_the_manager_answers_by_replying(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9006, "Bob", online=True)
    ann = user(1006, "Ann")
    async with service(managers_chat_id=None):
        tg.customer_says(ann, "hello from private mode")
        [copy] = await tg.wait_sent(9006)
        assert "hello from private mode" in copy.text and "#c" in copy.text
        original = tg._message(9006, copy.message_id, copy.text, None)
        tg.manager_says(9006, bob, "Hello Ann", reply_to=original)
        await tg.wait_for(lambda: any(s.text == "Hello Ann" for s in tg.sent_to(1006)))
        tg.manager_says(9006, bob, "/note private note", reply_to=original)
        tg.manager_says(9006, bob, "just chatting")
        await tg.wait_for(lambda: any("Reply to a customer" in s.text
                                      for s in tg.sent_to(9006)))
    assert await Message.filter(direction=Direction.NOTE, text="private note").exists()
    assert not any("private note" in s.text for s in tg.sent_to(1006))
    assert await Identity.filter(address="1006").exists()


async def test_the_message_comes_before_its_own_assignment_notice(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    await add_manager(9101, "Olga", "olga", online=True)
    eve = user(1101, "Eve")
    async with service():
        tg.customer_says(eve, "my kettle leaks")
        await tg.wait_for(lambda: "assigned to Olga" in topic_text(tg))
    text = topic_text(tg)
    assert text.index("my kettle leaks") < text.index("assigned to Olga")


async def test_the_bot_s_menu_stays_out_of_the_topic_a_request_for_a_person_does_not(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    fay = user(1102, "Fay")
    async with service():
        tg.customer_says(fay, "/help")
        tg.press(fay, "talk")  # "Talk to a manager" under the help answer
        await tg.wait_for(lambda: "Talk to a manager" in topic_text(tg))
        # Opting out is shown in the topic the customer already has.
        tg.customer_says(fay, "/stop")
        await tg.wait_for(lambda: "Marketing: stopped on telegram (command)" in topic_text(tg))
        answers = await tg.wait_sent(1102, 3)
    text = topic_text(tg)
    assert "/help" not in text and "Write your question" not in text  # the bot's business
    assert [a.text for a in answers][1] == "A manager will answer you here soon. Please write " \
        "your question."
    [conversation] = await Conversation.all()
    assert conversation.status is ConversationStatus.OPEN


async def test_an_opt_out_makes_no_topic_of_its_own(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    gus = user(1103, "Gus")
    async with service():
        tg.customer_says(gus, "/stop")
        await tg.wait_sent(1103)
        tg.customer_says(gus, "/help")
        await tg.wait_sent(1103, 2)
    assert tg.sent_to(GROUP) == [] and await CustomerTopic.all().count() == 0


async def test_a_russian_speaking_group_reads_assignments_and_order_events_in_russian(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    await add_manager(9102, "Olga", "olga")
    olga = user(9102, "Olga", language_code="ru")
    hal = user(1104, "Hal")
    async with service(managers_language="ru") as app:
        assert app.core is not None
        thread = await customer_topic(tg, hal, "где мой заказ?")
        tg.manager_says(GROUP, olga, "/assign me", thread)
        await tg.wait_for(lambda: "Диалог открыт, менеджер: Olga (изменил(а) Olga)."
                          in topic_text(tg, thread))
        me = CustomerRef(identities=((Channel.TELEGRAM, "1104"),))
        await app.core.orders.put("C-1", OrderInput(customer=me), source="api",
                                  actor="api:shop")
        await app.core.orders.set_status("C-1", "shipped", note="DHL 7", source="api",
                                         actor="api:shop")
        await tg.wait_for(lambda: "Заказ C-1: Новый → Отправлен (ключ API shop). Заметка: DHL 7"
                          in topic_text(tg, thread))
    text = topic_text(tg, thread)
    assert "Заказ C-1 оформлен: Новый (ключ API shop)." in text
    assert "assigned to" not in text and "Order C-1" not in text
    # The timeline keeps the English text for the API, the command line and exports.
    events = [m.text for m in await Message.filter(direction=Direction.EVENT).order_by("id")]
    assert events == ["assigned to Olga", "Order C-1 placed: New (api:shop).",
                      "Order C-1: New → Shipped (api:shop). Note: DHL 7"]


async def test_history_shows_events_in_the_language_of_the_manager_who_asks(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9103, "Bob", "bob")
    await add_manager(9104, "Olga", "olga")
    olga = user(9104, "Olga", language_code="ru")
    ivy = user(1105, "Ivy")
    async with service():
        thread = await customer_topic(tg, ivy, "a question")
        tg.manager_says(GROUP, bob, "/assign @olga", thread)
        tg.manager_says(GROUP, bob, "/close", thread)
        await tg.wait_for(lambda: "closed by Bob" in topic_text(tg, thread))
        tg.manager_says(GROUP, olga, "/history 5", thread)
        await tg.wait_for(lambda: "Последние записи" in topic_text(tg, thread))
    history = topic_text(tg, thread).split("Последние записи")[1]
    assert "назначен менеджер Olga" in history and "диалог закрыт" in history
    assert "assigned to Olga" not in history and "conversation closed" not in history


async def test_private_chat_mode_each_manager_reads_in_their_own_language(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9105, "Bob")  # both away: every copy goes to both
    olga_m, _ = await add_manager(9106, "Olga")
    await Manager.filter(id=olga_m.id).update(language="ru")
    jo = user(1106, "Jo")
    async with service(managers_chat_id=None) as app:
        assert app.core is not None
        tg.customer_says(jo, "hello both")
        [copy] = await tg.wait_for(lambda: [s for s in tg.sent_to(9105) if "hello both" in s.text])
        await tg.wait_for(lambda: any("hello both" in s.text for s in tg.sent_to(9106)))
        me = CustomerRef(identities=((Channel.TELEGRAM, "1106"),))
        await app.core.orders.put("D-1", OrderInput(customer=me), source="api",
                                  actor="api:shop")
        await tg.wait_for(lambda: any("Order D-1 placed: New (API key shop)." in s.text
                                      for s in tg.sent_to(9105)))
        await tg.wait_for(lambda: any("Заказ D-1 оформлен: Новый (ключ API shop)." in s.text
                                      for s in tg.sent_to(9106)))
        original = tg._message(9105, copy.message_id, copy.text, None)
        tg.manager_says(9105, bob, "/close", reply_to=original)
        await tg.wait_for(lambda: any("Conversation closed by Bob." in s.text
                                      for s in tg.sent_to(9105)))
        await tg.wait_for(lambda: any("Диалог закрыл(а) Bob." in s.text
                                      for s in tg.sent_to(9106)))
    to_bob = "\n".join(s.text for s in tg.sent_to(9105))
    to_olga = "\n".join(s.text for s in tg.sent_to(9106))
    assert "Заказ" not in to_bob and "Диалог" not in to_bob
    assert "Order D-1" not in to_olga and "closed by" not in to_olga
    assert to_olga.count("#c") >= 2 and "<b>Jo</b> #c" in to_olga  # replies find the customer
