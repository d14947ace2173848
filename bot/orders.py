"""Orders in the customer dialogue, on every channel: "my orders", "order NUMBER", and order
updates on or off. Plugged into `Dialogue.handle` by the composition root.

- ORDERS (Telegram's "My orders" button and `/orders`, SMS ORDERS / ЗАКАЗЫ, a mail saying
  "orders"): the customer's recent orders with their status, each a choice that shows it.
- ORDER NUMBER (`/order A-1042`, the button, SMS "ORDER A-1042" / "ЗАКАЗ 1042", a mail whose
  subject or first line says so): that order with its history and a link to its status page,
  if it is the customer's own (by identity: merged customers have the orders of both).
  Someone else's number and a number that does not exist get the same answer, from the same
  single statement (crm/orders/queries.py `owned`). Lookups are limited per customer.
- NOTIFICATIONS (`/notifications off|on`, SMS and email UPDATES OFF|ON, УВЕДОМЛЕНИЯ ВЫКЛ|ВКЛ,
  the choice under the list): order updates on this channel, apart from marketing, through the
  consent service.
"""

from __future__ import annotations

from bot.customer import Dialogue, Turn
from bot.intents import Intent, Recognised, action
from crm.i18n import t
from crm.orders import texts
from crm.orders.lookups import LookupLimiter, counted
from crm.types import Channel, Choice, ConsentKind


class OrderDialogue:
    def __init__(self, dialogue: Dialogue) -> None:
        self.dialogue = dialogue
        self.core = dialogue.core
        self.limiter = LookupLimiter(self.core.settings.orders.lookups_per_hour)

    def install(self) -> OrderDialogue:
        self.dialogue.handle(Intent.ORDERS, self.orders)
        self.dialogue.handle(Intent.ORDER, self.order)
        self.dialogue.handle(Intent.NOTIFICATIONS, self.notifications)
        return self

    async def orders(self, turn: Turn, found: Recognised) -> None:
        orders = self.core.orders
        mine = await self.core.queries.orders.recent(await self._owner(turn),
                                                     self.core.settings.orders.recent)
        choices = [Choice(action(Intent.ORDER, o.number), o.number) for o in mine]
        choices.append(await self._switch(turn))
        await self.dialogue.say(turn, "orders", texts.listing(mine, orders.statuses,
                                                              turn.language), choices)

    async def order(self, turn: Turn, found: Recognised) -> None:
        if not found.arg.strip():  # a bare /order: the list to pick from
            await self.orders(turn, found)
            return
        number = found.arg.strip()[:40]
        if not self.limiter.allow(turn.customer.id):
            await self.dialogue.say(turn, "order", t("order_limited", turn.language))
            return
        order = await self.core.queries.orders.owned(await self._owner(turn), number)
        counted(order is not None)
        if order is None:
            await self.dialogue.say(turn, "order", t("order_not_found", turn.language,
                                                     number=number))
            return
        link = await self.core.orders.link(order.id, order.customer_id)
        # By SMS the last steps only: every segment costs, and the page has the rest.
        await self.dialogue.say(turn, "order", texts.details(
            order, self.core.orders.statuses, turn.language, link,
            history_limit=3 if turn.channel is Channel.SMS else None))

    async def notifications(self, turn: Turn, found: Recognised) -> None:
        if found.arg not in ("on", "off"):
            await self.dialogue.say(turn, "notifications", t("notifications_ask", turn.language),
                                    (await self._switch(turn),))
            return
        word = self.core.consent.start if found.arg == "on" else self.core.consent.stop
        await word(turn.customer.id, turn.channel, kind=ConsentKind.NOTIFICATIONS,
                   source=found.source, actor="customer")
        await self.dialogue.say(turn, "notifications", texts.per_channel(
            f"notifications_{found.arg}", turn.channel, turn.language,
            company=self.core.settings.bot.company_name))

    async def _owner(self, turn: Turn) -> int:
        # The survivor, should this very message have merged the customer into another.
        return (await self.core.customers.get(turn.customer.id)).id

    async def _switch(self, turn: Turn) -> Choice:
        """The choice that turns order updates on this channel the other way."""
        on = await self.core.consent.allows(turn.customer.id, ConsentKind.NOTIFICATIONS,
                                            turn.channel)
        word = "off" if on else "on"
        return Choice(action(Intent.NOTIFICATIONS, word),
                      t(f"menu_notifications_{word}", turn.language))
