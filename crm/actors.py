"""Who did something, as the team reads it.

The audit log, the API and the timeline keep actors as ids (`manager:7`, `routing`, `api:shop`,
`import:orders.csv`, `cli`, `customer`); people read "Bob", "automatic routing", "API key shop",
in their language. An id of a kind we do not know is shown as it is.
"""

from __future__ import annotations

from crm.i18n import Phrase, Text
from crm.models import Manager

_PLAIN = {"routing": "actor_routing", "cli": "actor_cli", "customer": "actor_customer",
          "erased": "actor_erased"}
_NAMED = {"api": "actor_api", "import": "actor_import"}


def actor_text(actor: str, manager_name: str | None = None) -> Text:
    """`actor` for people; `manager_name`: the name of the manager it names, if known."""
    kind, _, ident = actor.partition(":")
    if kind == "manager" and ident:
        return manager_name or Phrase("actor_manager", id=ident)
    if not ident and kind in _PLAIN:
        return Phrase(_PLAIN[kind])
    if ident and kind in _NAMED:
        return Phrase(_NAMED[kind], name=ident)
    return actor


async def actor_named(actor: str) -> Text:
    """`actor_text`, with the name of the manager looked up."""
    kind, _, ident = actor.partition(":")
    name = None
    if kind == "manager" and ident.isdigit():
        manager = await Manager.get_or_none(id=int(ident))
        name = manager.name if manager is not None else None
    return actor_text(actor, name)
