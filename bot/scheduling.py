"""The managers' scheduling commands, for whichever chat handler receives them.

Thin on purpose: `answer` splits "/remind@our_bot 2d call back" into the command and its
arguments, calls the one core service that does it (crm/team_commands.py) and returns the reply
text (plain: escape it for Telegram HTML). It returns None for a command that is not one of
these, so the caller can try its other handlers.
"""

from __future__ import annotations

import re
from datetime import datetime

from crm.automation import automation
from crm.models import Manager
from crm.services import Core

COMMANDS = ("remind", "followup", "queue", "tasks", "online", "away")
_COMMAND = re.compile(r"^/([A-Za-z_]+)(?:@\w+)?(?:\s+(.*))?$", re.DOTALL)


def split_command(text: str) -> tuple[str, str] | None:
    """'/remind@bot 2d call back' → ('remind', '2d call back'); not a command → None."""
    m = _COMMAND.match((text or "").strip())
    if not m:
        return None
    return m.group(1).lower(), (m.group(2) or "").strip()


async def answer(core: Core, manager: Manager, customer_id: int | None, text: str,
                 now: datetime, ref: str | None = None) -> str | None:
    """The reply to a scheduling command, or None if `text` is not one.

    `customer_id`: the customer of the topic it was written in (None in a private chat);
    `ref`: the chat message ("chat_id:message_id"), so a redelivered update sets nothing twice.
    """
    parsed = split_command(text)
    if parsed is None or parsed[0] not in COMMANDS:
        return None
    name, args = parsed
    commands = automation(core).commands
    if name == "remind":
        return await commands.remind(manager, customer_id, args, now, ref=ref)
    if name == "followup":
        return await commands.followup(manager, customer_id, args, now, ref=ref)
    if name == "queue":
        return await commands.queue(manager, customer_id, args, now)
    if name == "tasks":
        return await commands.tasks_command(manager, customer_id, args, now)
    if name == "online":
        return await commands.online(manager, customer_id, args, now)
    return await commands.away(manager, customer_id, args, now)
