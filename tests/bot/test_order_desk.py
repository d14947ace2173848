"""Orders in the managers' chat: each status change shows in the customer's topic; /orders,
/order NUMBER and /info in the topic, in the manager's language; the shop's text escaped for
Telegram's HTML."""

from __future__ import annotations

from crm.orders.service import CustomerRef, OrderInput
from crm.types import Channel, ConsentKind, ConsentSource
from tests.bot.test_managers_chat import customer_topic, topic_text
from tests.support.telegram_double import GROUP, TelegramDouble, user
from tests.support.telegram_fixtures import ServiceFactory, add_manager


async def test_managers_see_the_orders_of_the_customer_in_the_topic(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    _, bob = await add_manager(9101, "Bob", "bob")
    ann = user(1101, "Ann")
    async with service() as app:
        assert app.core is not None
        orders = app.core.orders
        thread = await customer_topic(tg, ann, "where is my parcel?")
        me = CustomerRef(identities=((Channel.TELEGRAM, "1101"),))
        await orders.put("A-1", OrderInput(
            customer=me, items=[{"name": "<b>Mug</b> & co", "quantity": 2}],
            amount="49.90", currency="EUR"), source="api", actor="api:shop")
        await orders.set_status("A-1", "shipped", note="DHL <123>", source="api",
                                actor="api:shop")
        # Each change is an event in the topic, and the customer's notice is mirrored too.
        await tg.wait_for(lambda: "Order A-1: New → Shipped (API key shop). Note: DHL &lt;123&gt;"
                          in topic_text(tg, thread))
        assert "Order A-1 placed: New" in topic_text(tg, thread)
        told = await tg.wait_for(lambda: [s for s in tg.sent_to(1101) if "Shipped" in s.text])
        assert "DHL" not in told[0].text  # the note is the team's

        tg.manager_says(GROUP, bob, "/orders", thread)
        await tg.wait_for(lambda: "<b>Orders</b> (newest first):" in topic_text(tg, thread))
        tg.manager_says(GROUP, bob, "/order a-1", thread)
        await tg.wait_for(lambda: "status page: http" in topic_text(tg, thread))
        tg.manager_says(GROUP, bob, "/order Z-9", thread)
        await tg.wait_for(lambda: "has no order Z-9" in topic_text(tg, thread))
        tg.manager_says(GROUP, bob, "/info", thread)
        await tg.wait_for(lambda: "orders: A-1 Shipped" in topic_text(tg, thread))
    text = topic_text(tg, thread)
    assert "&lt;b&gt;Mug&lt;/b&gt; &amp; co × 2" in text and "<b>Mug" not in text
    assert "total: 49.90 EUR" in text and "Shipped (API key shop) — DHL &lt;123&gt;" in text
    assert not tg.rejected  # every block was HTML Telegram accepts


async def test_a_russian_speaking_manager_reads_orders_and_the_card_in_russian(
        tg: TelegramDouble, service: ServiceFactory) -> None:
    await add_manager(9102, "Olga", "olga")
    olga = user(9102, "Olga", language_code="ru")
    ann = user(1102, "Ann")
    async with service() as app:
        assert app.core is not None
        orders = app.core.orders
        thread = await customer_topic(tg, ann, "где посылка?")
        me = CustomerRef(identities=((Channel.TELEGRAM, "1102"),))
        await orders.put("B-1", OrderInput(customer=me, external_number="SHOP-9",
                                           amount="10.00", currency="EUR"),
                         source="api", actor="api:shop")
        await orders.set_status("B-1", "shipped", source="api", actor="api:shop")
        customer_id = (await app.core.customers.find("1102"))[0].id
        await app.core.consent.change(customer_id, ConsentKind.MARKETING, False,
                                      channel=Channel.TELEGRAM, source=ConsentSource.COMMAND,
                                      actor="customer")
        # What the whole group reads stays in the group's language (English here).
        await tg.wait_for(lambda: "Order B-1: New → Shipped (API key shop)."
                          in topic_text(tg, thread))

        tg.manager_says(GROUP, olga, "/orders", thread)
        await tg.wait_for(lambda: "<b>Заказы</b> (сначала новые):" in topic_text(tg, thread))
        tg.manager_says(GROUP, olga, "/order b-1", thread)
        await tg.wait_for(lambda: "страница статуса: http" in topic_text(tg, thread))
        tg.manager_says(GROUP, olga, "/order", thread)
        await tg.wait_for(lambda: "Так: /order НОМЕР" in topic_text(tg, thread))
        tg.manager_says(GROUP, olga, "/order Z-9", thread)
        await tg.wait_for(lambda: "У этого клиента нет заказа Z-9." in topic_text(tg, thread))
        tg.manager_says(GROUP, olga, "/info", thread)
        await tg.wait_for(lambda: "заказы: B-1 Отправлен" in topic_text(tg, thread))
    text = topic_text(tg, thread)
    assert "B-1 · " in text and " · Отправлен · 10.00 EUR" in text
    assert "<i>/order НОМЕР — один заказ с историей</i>" in text
    assert "номер в магазине: SHOP-9" in text and "сумма: 10.00 EUR" in text
    assert "Отправлен (ключ API shop)" in text and "Новый (ключ API shop)" in text
    card = text[text.index("<b>Ann</b> #"):]
    assert "диалог: открыт" in card
    assert "рассылки: telegram — нет (команда, " in card
    assert "уведомления: telegram — да (по умолчанию), остальные каналы — да (по умолчанию)" \
        in card
    for english in ("Orders", "shop number", "total:", "status page", "has no order",
                    "conversation: open", "marketing:", "Usage: /order"):
        assert english not in text
    assert not tg.rejected
