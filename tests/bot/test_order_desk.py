"""Orders in the managers' chat: each status change shows in the customer's topic; /orders,
/order NUMBER and /info in the topic; the shop's text escaped for Telegram's HTML."""

from __future__ import annotations

from crm.orders.service import CustomerRef, OrderInput
from crm.types import Channel
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
        await tg.wait_for(lambda: "Order A-1: New → Shipped (api:shop). Note: DHL &lt;123&gt;"
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
    assert "total: 49.90 EUR" in text and "Shipped (api:shop) — DHL &lt;123&gt;" in text
    assert not tg.rejected  # every block was HTML Telegram accepts
