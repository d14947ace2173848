"""Customers' forum topics in the managers' group: found, created, recreated, closed, reopened.

The sender calls this while it sends a row to the group, so a topic is created on first use and
recreated, not reported as an error, when someone deleted it.
"""

from __future__ import annotations

import structlog
from telegram import Bot

from crm.i18n import team
from crm.models import Customer, CustomerTopic

log = structlog.get_logger(__name__)


def topic_link(chat_id: int, thread_id: int) -> str:
    """A link to a forum topic of a supergroup: t.me/c/<chat id without -100>/<thread>."""
    internal = str(chat_id).removeprefix("-100").removeprefix("-")
    return f"https://t.me/c/{internal}/{thread_id}"


def topic_name(customer: Customer, language: str | None = None) -> str:
    """The customer's name and #id; without a name, "Customer #id" in the group's language."""
    name = (customer.name or "").strip() or team("topic_customer", language)
    suffix = f" #{customer.id}"
    return name[: 128 - len(suffix)] + suffix


async def resolve(customer_id: int) -> Customer:
    """The customer, following merges (a merged customer's topic belongs to the survivor)."""
    customer = await Customer.get(id=customer_id)
    while customer.merged_into_id is not None:
        customer = await Customer.get(id=customer.merged_into_id)
    return customer


class Topics:
    def __init__(self, bot: Bot, chat_id: int, language: str | None = None) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.language = language  # the group's ([telegram] managers_language)

    async def find(self, customer_id: int) -> CustomerTopic | None:
        customer = await resolve(customer_id)
        return await CustomerTopic.filter(customer_id=customer.id, chat_id=self.chat_id).first()

    async def thread_for(self, customer_id: int) -> int:
        topic = await self.find(customer_id)
        if topic is not None:
            return int(topic.thread_id)
        return await self._create(customer_id)

    async def recreate(self, customer_id: int) -> int:
        customer = await resolve(customer_id)
        await CustomerTopic.filter(customer_id=customer.id, chat_id=self.chat_id).delete()
        log.warning("telegram.topic_recreated", customer_id=customer.id)
        return await self._create(customer.id)

    async def _create(self, customer_id: int) -> int:
        customer = await resolve(customer_id)
        forum = await self.bot.create_forum_topic(self.chat_id,
                                                  topic_name(customer, self.language))
        await CustomerTopic.create(customer_id=customer.id, chat_id=self.chat_id,
                                   thread_id=forum.message_thread_id)
        log.info("telegram.topic_created", customer_id=customer.id,
                 thread_id=forum.message_thread_id)
        return int(forum.message_thread_id)

    async def set_closed(self, customer_id: int, closed: bool) -> None:
        topic = await self.find(customer_id)
        if topic is None or topic.closed == closed:
            return
        if closed:
            await self.bot.close_forum_topic(self.chat_id, int(topic.thread_id))
        else:
            await self.bot.reopen_forum_topic(self.chat_id, int(topic.thread_id))
        await CustomerTopic.filter(id=topic.id).update(closed=closed)

    async def customer_of(self, thread_id: int) -> int | None:
        topic = await CustomerTopic.filter(chat_id=self.chat_id, thread_id=thread_id).first()
        return topic.customer_id if topic else None
