"""The managers' toolkit in the chat: files to customers, edits, canned replies, search.

Each is thin: it reads what the manager wrote, calls one crm service (crm/replies.py,
crm/edits.py, crm/search.py through the queries) and answers in the manager's language.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import render
from channels.telegram.text import escape
from crm.edits import EditOutcome
from crm.files import is_kept, megabytes, note_of, too_large
from crm.i18n import team
from crm.models import Manager
from crm.types import Attachment, Direction, StaffMessage

if TYPE_CHECKING:
    from bot.desk import Desk, Where

FIND_LIMIT = 8


async def sendable_files(desk: Desk, message: StaffMessage,
                         where: Where) -> tuple[Attachment, ...] | None:
    """The manager's files that can go (kept in the store); None when some could not, and
    nothing else is to be sent: the manager is told which and why."""
    if not message.attachments:
        return ()
    kept = tuple(a for a in message.attachments if is_kept(a))
    for lost in (a for a in message.attachments if not is_kept(a)):
        name = lost.filename or lost.kind
        if too_large(lost):
            limit = int(lost.meta.get("limit") or desk.core.files.max_bytes)
            size = megabytes(lost.size, where.lang) if lost.size else "?"
            await desk.say(where, team("file_too_large", where.lang, name=name, size=size,
                                       limit=megabytes(min(limit, 20 * 1024 * 1024),
                                                       where.lang)))
        else:
            await desk.say(where, team("file_not_kept", where.lang, name=name,
                                       why=note_of(lost, where.lang)))
    if len(kept) < len(message.attachments):
        return None  # half a message would mislead: the manager sends again
    return kept


async def edited(desk: Desk, manager: Manager, message: StaffMessage, where: Where) -> None:
    """A manager edited a message of theirs: correct the reply it was, if it was one."""
    if message.command is not None:
        return  # an edited command is not run again
    found = await desk.core.edits.by_key(f"tg:{where.key}")
    if found is None or found.direction is not Direction.OUT:
        return  # not a reply to a customer (the team talking, a note): nothing to change
    outcome, channel = await desk.core.edits.edit(found.id, message.text, manager)
    if outcome is EditOutcome.SENT:
        return  # the 👍 on their message stays; the customer sees the change
    if outcome is EditOutcome.KEPT:
        await desk.say(where, team("edit_kept", where.lang, channel=channel.value))


async def canned(desk: Desk, manager: Manager, where: Where, args: str) -> None:
    key = args.strip().split(" ", 1)[0]
    if not key:
        await list_replies(desk, where)
        return
    customer = await desk.core.customers.get(where.customer_id or 0)
    row, out = await desk.core.replies.render_for(key, customer, manager)
    await desk._reply(manager, where, out.text, await desk._channel_choice(customer.id),
                      html=out.html, meta={"canned": row.key})


async def list_replies(desk: Desk, where: Where) -> None:
    lines = await desk.core.replies.list()
    if not lines:
        await desk.say(where, team("replies_none", where.lang))
        return
    out = [f"<b>{escape(team('replies_head', where.lang))}</b>"]
    out += [f"<code>/r {escape(line.key)}</code> ({escape(', '.join(line.languages))}) — "
            f"{escape(line.preview)}" for line in lines]
    await desk.say(where, "\n".join(out), html=True)


async def find(desk: Desk, where: Where, args: str) -> None:
    text = args.strip()
    if not text:
        await desk.say(where, team("find_usage", where.lang))
        return
    result = await desk.core.queries.search(text, FIND_LIMIT, topics_in=desk.group)
    if not result.customers and not result.messages:
        await desk.say(where, team("find_nothing", where.lang, text=text))
        return
    lines = [f"🔎 <b>{escape(text)}</b>"]
    if result.customers:
        lines.append(f"<b>{escape(team('find_customers', where.lang))}</b>")
        for c in result.customers:
            name = c.name or (c.addresses[0] if c.addresses else f"#{c.id}")
            lines.append(f"• {_linked(desk, escape(name), c.thread_id)} #{c.id} "
                         f"{escape(', '.join(c.addresses[:3]))}")
    if result.messages:
        lines.append(f"<b>{escape(team('find_messages', where.lang))}</b>")
        for m in result.messages:
            when = m.created_at.strftime("%Y-%m-%d") if m.created_at else ""
            who = escape(m.customer_name or f"#{m.customer_id}")
            lines.append(f"• {_linked(desk, who, m.thread_id)} · {render.mark(m.channel)} "
                         f"{when}: {escape(m.snippet)}")
    await desk.say(where, "\n".join(lines), html=True)


def _linked(desk: Desk, label: str, thread_id: int | None) -> str:
    """A link to the customer's topic (t.me/c/<chat>/<thread>), when they have one."""
    if desk.group is None or thread_id is None:
        return label
    return f'<a href="{render.topic_link(desk.group, thread_id)}">{label}</a>'
