"""Two services on one database, as two `crm run` processes would be: on PostgreSQL a visitor
whose chat is open on one hears a reply that the other queued (LISTEN/NOTIFY), and it is marked
delivered from there; SQLite is one process, where both are the same service."""

from __future__ import annotations

from crm.models import Message
from crm.types import DeliveryStatus
from tests.channels.webchat.conftest import Chat, running, webchat_settings
from tests.conftest import DB_KIND
from tests.support import procs
from tests.support.webchat_visitor import Visitor


async def test_a_reply_reaches_a_chat_open_on_another_process(db: str, chat: Chat) -> None:
    async with running(webchat_settings(db, procs.free_port())) as other:
        listener = other if DB_KIND == "postgres" else chat
        writer = await chat.visitor()
        first = await writer.says("hello from the first process")
        # The widget, a customer now, listens again (widget.js): here, on the other process.
        reader = Visitor(listener.http, listener.base, writer.origin, token=writer.token)
        listener.visitors.append(reader)
        await reader.listen()
        customer_id = (await Message.get(id=first["id"])).customer_id
        message = await chat.core.conversations.send(customer_id, "an answer",
                                                     author=await chat.manager())
        got = await reader.wait_for(lambda: next(
            (m for m in reader.received if m["id"] == message.id), None))
        assert got["text"] == "an answer"
        # Marked delivered by the process the chat is open on.
        await listener.status(message.id, DeliveryStatus.DELIVERED)
        assert (await Message.get(id=message.id)).delivery_status is DeliveryStatus.DELIVERED
