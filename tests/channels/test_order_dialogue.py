"""Customers ask about their orders on every channel, end to end: Telegram (the Bot API double),
SMS (a real Kannel, the test playing the network) and email (Dovecot and an SMTP server).

Their own orders, with the history and a link; someone else's number answered exactly as a
number that does not exist; the lookup limit, counted in /metrics; a status change told once on
their channel even when posted twice; order updates turned off apart from marketing; a merged
customer seeing the orders of both."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from crm.app import App, _telegram
from crm.i18n import t
from crm.models import Conversation, Identity, Message
from crm.orders.service import CustomerRef, OrderInput
from crm.orders.texts import per_channel
from crm.services import Core
from crm.types import Channel, ConsentKind, Direction
from tests.channels.email.conftest import email_settings
from tests.channels.email.conftest import running as email_running
from tests.channels.sms.conftest import kannel_settings
from tests.channels.test_dialogue import COMPANY, OnEmail, OnSms, OnTelegram, Speaker
from tests.conftest import make_settings
from tests.support.dovecot import Dovecot
from tests.support.kannel import FakeSmsc, KannelServer
from tests.support.smtp import SmtpServer
from tests.support.telegram_double import TelegramDouble, telegram_settings

_ids = itertools.count(1)
LOOKUPS = 4
ORDERS = {"lookups_per_hour": LOOKUPS}

# What each channel's customer says: (text, subject).
SAYS: dict[Channel, dict[str, tuple[str, str]]] = {
    Channel.TELEGRAM: {"orders": ("/orders", ""), "order": ("/order {}", ""),
                       "off": ("/notifications off", "")},
    Channel.SMS: {"orders": ("ORDERS", ""), "order": ("ORDER {}", ""),
                  "off": ("Updates off", "")},
    Channel.EMAIL: {"orders": ("", "My orders"), "order": ("order #{}", "Re: Your request"),
                    "off": ("updates off", "Re: Your request")},
}


@pytest_asyncio.fixture(params=[Channel.TELEGRAM, Channel.SMS, Channel.EMAIL],
                        ids=lambda c: c.value)
async def asker(request: pytest.FixtureRequest, db: str, tmp_path: Path, tg: TelegramDouble,
                kannel: KannelServer, smsc: FakeSmsc, dovecot: Dovecot,
                smtp: SmtpServer) -> AsyncIterator[tuple[Speaker, Core]]:
    channel: Channel = request.param
    bot = {"company_name": COMPANY, "acknowledge": []}
    async with AsyncExitStack() as stack:
        if channel is Channel.TELEGRAM:
            settings = make_settings(db, telegram=telegram_settings(tg), bot=bot, orders=ORDERS)
            app = await stack.enter_async_context(App(
                settings, extra_channels=[_telegram], builtin_channels=False,
                manage_database=False))
            speaker: Speaker = OnTelegram(tg, 19000 + next(_ids))
        elif channel is Channel.SMS:
            base = kannel_settings(db, kannel)
            settings = base.model_copy(update={
                "bot": base.bot.model_copy(update=bot),
                "orders": base.orders.model_copy(update=ORDERS)})
            app = await stack.enter_async_context(App(settings, manage_database=False))
            speaker = OnSms(smsc, f"+1202556{next(_ids) + 1000:04d}")
        else:
            box = dovecot.add_user()
            base = email_settings(db, dovecot, smtp, box, tmp_path, auto_reply_cap_per_hour=50)
            settings = base.model_copy(update={
                "bot": base.bot.model_copy(update=bot),
                "orders": base.orders.model_copy(update=ORDERS)})
            svc = await stack.enter_async_context(email_running(settings))
            await svc.idle()
            app = svc.app
            speaker = OnEmail(dovecot, box, smtp, f"olga{next(_ids)}@customer.org")
        assert app.core is not None
        yield speaker, app.core


def _refused() -> float:
    return REGISTRY.get_sample_value("crm_order_lookups_total", {"outcome": "refused"}) or 0.0


async def test_customers_see_their_own_orders_and_nobody_else_s(
        asker: tuple[Speaker, Core]) -> None:
    speaker, core = asker
    channel = speaker.channel
    said = 0

    async def ask(what: str, arg: str = "", count: int = 1) -> list[str]:
        nonlocal said
        text, subject = SAYS[channel][what]
        await speaker.says(text.format(arg), subject)
        said += count
        return (await speaker.answers(said))[-count:]

    [none] = await ask("orders")
    assert none.startswith(t("orders_none", "en"))
    me = (await Identity.get(channel=channel, address=speaker.address)).customer_id
    await core.orders.put("A-100", OrderInput(customer=CustomerRef(customer_id=me),
                                              status="paid"), source="api", actor="api:shop",
                          notify=False)
    await core.orders.put("A-101", OrderInput(customer=CustomerRef(customer_id=me)),
                          source="api", actor="api:shop")
    stranger = CustomerRef(identities=((Channel.EMAIL, "stranger@example.com"),))
    await core.orders.put("Z-900", OrderInput(customer=stranger, status="shipped"),
                          source="api", actor="api:shop", notify=False)

    [listing] = await ask("orders")
    assert listing.startswith(t("orders_list", "en"))
    assert "A-101" in listing and "A-100" in listing and "Paid" in listing
    assert "Z-900" not in listing

    [mine] = await ask("order", "a-100")  # the case of a number does not matter
    assert mine.startswith("Order A-100: Paid")
    link = re.search(r"https?://\S+/o/\S+", mine)
    assert link is not None

    # Someone else's order and one that does not exist: the same answer.
    [theirs] = await ask("order", "Z-900")
    [nowhere] = await ask("order", "Q-404")
    assert theirs.startswith(t("order_not_found", "en", number="Z-900"))
    assert theirs.replace("Z-900", "N") == nowhere.replace("Q-404", "N")
    assert "Shipped" not in theirs

    # The limit: every lookup counts, found or not; the next is refused, and counted.
    before = _refused()
    [fourth] = await ask("order", "A-100")
    assert fourth.startswith("Order A-100")
    [refused] = await ask("order", "A-100")
    assert refused.startswith(t("order_limited", "en"))
    assert _refused() == before + 1

    # A status posted twice: one message, on this channel, with the link.
    for _ in range(2):
        await core.orders.set_status("A-101", "shipped", source="api", actor="api:shop")
    [told] = (await speaker.answers(said + 1))[-1:]
    said += 1
    assert "A-101" in told and "Shipped" in told and "/o/" in told

    # Order updates off, here: confirmed; the next change is not sent (the timeline says so).
    [off] = await ask("off")
    assert off.startswith(per_channel("notifications_off", channel, "en", company=COMPANY))
    assert not await core.consent.allows(me, ConsentKind.NOTIFICATIONS, channel)
    assert await core.consent.allows(me, ConsentKind.MARKETING, channel)  # apart from news
    await core.orders.set_status("A-100", "shipped", source="api", actor="api:shop")
    note = await Message.filter(customer_id=me, direction=Direction.EVENT).order_by(
        "-id").first()
    assert note is not None and "not told" in note.text

    # A customer found to be the same person is merged: both identities' orders are theirs.
    other = Channel.SMS if channel is not Channel.SMS else Channel.EMAIL
    twin = await core.customers.create(
        identities=[(other, "+12025550177" if other is Channel.SMS else "twin@example.com")],
        actor="test")
    await core.orders.put("M-5", OrderInput(customer=CustomerRef(customer_id=twin.id)),
                          source="api", actor="api:shop")
    await core.customers.merge(twin.id, me)
    [merged] = await ask("orders")
    assert "M-5" in merged and "A-100" in merged
    # Still nothing went anywhere but this channel, and nothing reached the managers.
    assert [a for a in (await speaker.answers(said)) if "Z-900" in a and "Shipped" in a] == []
    assert await Conversation.filter(customer_id=me).count() == 0


async def test_a_mail_that_asks_and_says_more_is_answered_and_reaches_the_team(
        db: str, tmp_path: Path, dovecot: Dovecot, smtp: SmtpServer) -> None:
    box = dovecot.add_user()
    settings = email_settings(db, dovecot, smtp, box, tmp_path)
    async with email_running(settings) as svc:
        await svc.idle()
        assert svc.app.core is not None
        core = svc.app.core
        mail_of = OnEmail(dovecot, box, smtp, "petr@customer.org")
        await core.orders.put("7701", OrderInput(customer=CustomerRef(identities=(
            (Channel.EMAIL, "Petr@Customer.org"),))), source="api", actor="api:shop")
        await mail_of.says("Заказ 7701\nИ можно ли поменять адрес доставки?", "Доставка")
        [answer] = await mail_of.answers(1)
    assert answer.startswith("Заказ 7701: Новый")
    me = (await Identity.get(channel=Channel.EMAIL, address="petr@customer.org")).customer_id
    conversation = await Conversation.get(customer_id=me)
    assert conversation.status.value == "open"  # the question about the address is the team's
