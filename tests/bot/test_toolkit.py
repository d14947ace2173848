"""The managers' toolkit through the Bot API double: files both ways, edits, canned replies,
/find, and the team's language."""

from __future__ import annotations

import hashlib
from pathlib import Path

from crm.models import CannedReply, Manager, Message
from crm.types import Channel, DeliveryStatus, Direction, InboundMessage
from tests.support.telegram_double import GROUP, MB, TelegramDouble, user
from tests.support.telegram_fixtures import ServiceFactory, add_manager

PHOTO = bytes(range(256)) * 400  # 100 KB that must arrive byte for byte


def topic_text(tg: TelegramDouble, thread: int | None = None) -> str:
    return tg.topic_text(thread)


async def customer_topic(tg: TelegramDouble, customer: dict, text: str) -> int:
    tg.customer_says(customer, text)
    await tg.wait_for(lambda: text in topic_text(tg))
    return next(s.thread_id for s in tg.sent_to(GROUP) if text in s.text)


async def test_a_customer_s_photo_is_kept_and_mirrored_as_the_photo_with_its_caption(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    ann = user(2001, "Ann")
    async with service():
        tg.customer_says(ann, **tg.file_message("photo", PHOTO, caption="the box <is> torn"))
        [mirrored] = await tg.wait_for(lambda: tg.files_to(GROUP))
    stored = await Message.get(direction=Direction.IN)
    [attachment] = stored.attachments
    assert Path(str(attachment["path"])).read_bytes() == PHOTO
    assert attachment["meta"]["sha256"] == hashlib.sha256(PHOTO).hexdigest()  # type: ignore[index]
    assert mirrored.method == "sendPhoto" and mirrored.file is not None
    assert mirrored.file.data == PHOTO  # sent again by its file id: the very same file
    assert "Ann" in mirrored.text and "the box &lt;is&gt; torn" in mirrored.text
    assert mirrored.parse_mode == "HTML" and mirrored.thread_id is not None


async def test_an_oversized_file_gets_a_clear_answer_and_the_message_is_kept(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    ann = user(2002, "Ann")
    big = b"x" * (21 * MB)  # over what a bot may download (20 MB)
    async with service():
        tg.customer_says(ann, **tg.file_message("document", big, "scan.pdf", "application/pdf",
                                               caption="my contract"))
        answers = await tg.wait_sent(2002, 2)  # the acknowledgement, and this
        await tg.wait_for(lambda: "my contract" in topic_text(tg))
    assert any("could not keep your file (scan.pdf)" in a.text and "20 MB" in a.text
               for a in answers)
    stored = await Message.get(direction=Direction.IN, text="my contract")
    assert "path" not in stored.attachments[0]
    assert "scan.pdf (too large: not kept)" in topic_text(tg)
    assert not any(m == "download" for m, _ in tg.calls)


async def test_a_file_telegram_refuses_still_brings_its_text_to_the_topic(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    big = b"%PDF-1.4 " + b"x" * (51 * MB)  # kept ([files] max_bytes), over Telegram's 50 MB
    async with service(sections={"files": {"max_bytes": 60 * MB}}) as app:
        assert app.core is not None
        scan = app.core.files.save(big, kind="document", filename="scan.pdf",
                                   mime_type="application/pdf")
        await app.core.timeline.ingest(InboundMessage(
            Channel.EMAIL, "<big1@example.com>", "dora@example.com",
            text="The signed contract, see the last page", sender_name="Dora",
            attachments=(scan,)))
        await tg.wait_for(lambda: "could not be shown here" in topic_text(tg))
    text = topic_text(tg)
    assert "The signed contract, see the last page" in text and "Dora" in text
    assert "scan.pdf could not be shown here" in text and "at most 50 MB" in text
    assert tg.files_to(GROUP) == []


async def test_a_caption_too_long_with_the_private_header_goes_whole_as_text(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    await add_manager(9209, "Bob")
    ann = user(2011, "Ann")
    caption = "x" * 980 + " & done"  # fits a caption alone, not with "Ann #c1" above it
    async with service(managers_chat_id=None):
        tg.customer_says(ann, **tg.file_message("photo", PHOTO, caption=caption))
        [photo] = await tg.wait_for(lambda: tg.files_to(9209))
        [text] = await tg.wait_for(lambda: [s for s in tg.sent_to(9209) if "done" in s.text])
    assert text.text.endswith("x &amp; done") and "Ann</b> #c" in text.text
    assert photo.file is not None and photo.file.data == PHOTO
    assert "Ann</b> #c" in photo.text and tg.rejected == []


async def test_a_manager_s_document_reaches_the_customer_byte_for_byte_with_delivery_shown(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9201, "Bob", "bob")
    ann = user(2003, "Ann")
    invoice = b"%PDF-1.4 invoice " + bytes(range(256)) * 10
    async with service():
        thread = await customer_topic(tg, ann, "send me the invoice")
        sent = tg.manager_says(GROUP, bob, "", thread, **tg.file_message(
            "document", invoice, "счёт за май.pdf", "application/pdf", caption="Here it is"))
        [got] = await tg.wait_for(lambda: tg.files_to(2003))
        key = (GROUP, sent["message"]["message_id"])
        assert await tg.wait_for(lambda: tg.reactions.get(key)) == ["👍"]
    assert got.method == "sendDocument" and got.file is not None and got.file.data == invoice
    assert got.file.filename == "счёт за май.pdf"  # as named, not percent-encoded
    assert got.text == "Here it is" and got.parse_mode is None
    out = await Message.get(direction=Direction.OUT, author_kind="manager")
    assert out.delivery_status is DeliveryStatus.SENT and out.text == "Here it is"
    assert out.attachments[0]["filename"] == "счёт за май.pdf"


async def test_a_manager_s_too_large_photo_is_refused_with_the_reason(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9202, "Bob")
    ann = user(2004, "Ann")
    async with service(sections={"files": {"max_bytes": 50_000}}):
        thread = await customer_topic(tg, ann, "a photo please")
        tg.manager_says(GROUP, bob, "", thread, **tg.file_message("photo", PHOTO))
        await tg.wait_for(lambda: "was not sent" in topic_text(tg, thread))
    assert "it is 100 KB, and at most 49 KB" in topic_text(tg, thread)
    assert tg.files_to(2004) == []
    assert not await Message.filter(direction=Direction.OUT, author_kind="manager").exists()


async def test_an_edit_in_the_topic_edits_the_customer_s_copy_and_keeps_both_versions(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9203, "Bob")
    ann = user(2005, "Ann")
    async with service():
        thread = await customer_topic(tg, ann, "when?")
        reply = tg.manager_says(GROUP, bob, "It ships on Mnoday", thread)
        [first] = await tg.wait_for(lambda: [s for s in tg.sent_to(2005) if "ships" in s.text])
        await tg.wait_for(lambda: tg.reactions.get((GROUP, reply["message"]["message_id"])))
        tg.edit(reply, "It ships on Monday")
        [edit] = await tg.wait_for(lambda: [s for s in tg.sent if s.method == "editMessageText"])
    assert (edit.chat_id, edit.message_id, edit.text) == (2005, first.message_id,
                                                         "It ships on Monday")
    out = await Message.get(direction=Direction.OUT, author_kind="manager")
    assert out.text == "It ships on Monday" and out.edited_at is not None
    assert [e["text"] for e in out.meta["edits"]] == ["It ships on Mnoday"]  # type: ignore[union-attr]
    assert "edited" not in topic_text(tg, thread)  # the manager sees their own edit already


async def test_an_edit_telegram_refuses_is_reported_in_the_topic_and_the_timeline(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9208, "Bob")
    ann = user(2010, "Ann")
    async with service():
        thread = await customer_topic(tg, ann, "when?")
        reply = tg.manager_says(GROUP, bob, "It ships on Mnoday", thread)
        await tg.wait_for(lambda: tg.reactions.get((GROUP, reply["message"]["message_id"])))
        tg.blocked.add(2010)  # the customer blocked the bot since
        tg.edit(reply, "It ships on Monday")
        await tg.wait_for(lambda: "did not reach the customer" in topic_text(tg, thread))
    assert "bot was blocked by the user" in topic_text(tg, thread)
    assert not [s for s in tg.sent if s.method == "editMessageText"]
    out = await Message.get(direction=Direction.OUT, author_kind="manager")
    # The customer has the first version: the message is not failed, its edit is.
    assert out.delivery_status is DeliveryStatus.SENT and out.text == "It ships on Monday"
    [edit] = out.meta["edits"]  # type: ignore[misc]
    assert edit["text"] == "It ships on Mnoday" and "blocked" in edit["not_delivered"]


async def test_canned_replies_are_rendered_per_language_and_escaped(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9205, "Bob")
    eve = user(2006, "<b>Eve</b> & co", language_code="ru")
    async with service() as app:
        assert app.core is not None
        replies = app.core.replies
        await replies.add("hours", "We are open 9–18, {{ customer.first_name }}.")
        await replies.add("hours", "<b>Часы</b>: 9–18, {{ customer.name }}!", language="ru",
                          html=True)
        thread = await customer_topic(tg, eve, "когда вы работаете?")
        tg.manager_says(GROUP, bob, "/r hours", thread)
        [got] = await tg.wait_for(lambda: [s for s in tg.sent_to(2006) if "9–18" in s.text])
        # The other managers read in the topic what the customer got, not only "/r hours".
        await tg.wait_for(lambda: "Часы: 9–18, &lt;b&gt;Eve&lt;/b&gt; &amp; co!"
                          in topic_text(tg, thread))
        tg.manager_says(GROUP, bob, "/replies", thread)
        await tg.wait_for(lambda: "/r hours" in topic_text(tg, thread))
        tg.manager_says(GROUP, bob, "/r nope", thread)
        await tg.wait_for(lambda: "No canned reply nope" in topic_text(tg, thread))
    assert got.parse_mode == "HTML"
    assert got.text == "<b>Часы</b>: 9–18, &lt;b&gt;Eve&lt;/b&gt; &amp; co!"
    out = await Message.get(direction=Direction.OUT, author_kind="manager")
    assert out.text == "Часы: 9–18, <b>Eve</b> & co!" and out.meta["canned"] == "hours"
    assert await CannedReply.filter(key="hours").count() == 2


async def test_find_lists_customers_and_messages_with_links_to_their_topics(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9206, "Bob")
    ann, ivan = user(2007, "Ann Smith"), user(2008, "Иван Петров")
    async with service():
        await customer_topic(tg, ann, "my parcel never came")
        thread = await customer_topic(tg, ivan, "Где мой ЗАКАЗ?")
        tg.manager_says(GROUP, bob, "/find parc", thread)
        await tg.wait_for(lambda: "🔎" in topic_text(tg, thread))
        tg.manager_says(GROUP, bob, "/find иван", thread)
        tg.manager_says(GROUP, bob, "/find заказ", thread)
        await tg.wait_for(lambda: topic_text(tg, thread).count("🔎") == 3)
    results = topic_text(tg, thread).split("🔎")[1:]  # answers may share one message
    assert "my parcel never came" in results[0] and "Ann Smith" in results[0]
    assert "https://t.me/c/1234567890/" in results[0]
    assert "Иван Петров" in results[1] and "Где мой ЗАКАЗ?" in results[2]


async def test_managers_read_the_bot_in_their_language(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    await add_manager(9207, "Olga")
    olga = user(9207, "Olga", language_code="ru")
    ann = user(2009, "Ann")
    async with service():
        thread = await customer_topic(tg, ann, "hello")
        tg.manager_says(GROUP, olga, "/note", thread)
        await tg.wait_for(lambda: "ТЕКСТ" in topic_text(tg, thread))
        tg.manager_says(GROUP, olga, "/tasks", thread)
        await tg.wait_for(lambda: "У вас задач нет." in topic_text(tg, thread))
        # A refusal of the core too: the English sentence stays for logs and the API.
        tg.manager_says(GROUP, olga, "/r nope", thread)
        await tg.wait_for(lambda: "Готового ответа nope нет" in topic_text(tg, thread))
    assert (await Manager.get(telegram_user_id=9207)).language == "ru"  # remembered
    assert "No canned reply" not in topic_text(tg, thread)
