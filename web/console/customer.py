"""A customer's page (the conversation view): the card, the timeline across channels, and the
actions of the managers' chat: reply, note, assign, close, reopen, tags. Each action calls the
same crm service the Telegram topic's command does (bot/desk.py), then shows the page again."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from crm.errors import Conflict, CrmError, NotFound
from crm.files import is_kept
from crm.roles import Permission
from crm.types import Channel, ConversationStatus
from web.console.guard import PATH, Visit, redirect, staff
from web.files import serve

TIMELINE = 200  # the last entries shown
MAX_TEXT = 20_000
REPLY_CHANNELS = {c.value: c for c in (Channel.TELEGRAM, Channel.EMAIL, Channel.SMS,
                                      Channel.WEBCHAT)}


def _id(visit: Visit) -> int:
    raw = visit.request.match_info["customer_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound(f"customer #{raw} does not exist")
    return int(raw)


async def _context(visit: Visit, customer_id: int) -> dict[str, Any]:
    queries = visit.core.queries
    card = await queries.card(customer_id)
    customer = card.customer
    timeline = await queries.timeline(customer.id, TIMELINE)
    managers = await queries.managers()
    names = {m.id: m.name for m in managers}
    entries = [{
        "m": m, "author": names.get(m.author_id or 0),
        "files": [{"index": i, "name": str(a.get("filename") or a.get("kind") or "file"),
                   "kept": is_kept(a)} for i, a in enumerate(m.attachments)],
    } for m in timeline]
    return {
        "card": card, "customer": customer, "latest": card.conversations.latest,
        "assignee": card.conversations.assignee_name, "entries": entries,
        "orders": await queries.orders.recent(customer.id, 10), "managers": managers,
        "reply_channels": sorted({i.channel.value for i in customer.identities
                                  if i.channel.value in REPLY_CHANNELS}),
        "nonce": uuid.uuid4().hex, "error": None,
    }


@staff(Permission.CUSTOMERS)
async def customer_page(visit: Visit) -> web.Response:
    customer_id = _id(visit)
    context = await _context(visit, customer_id)
    if context["customer"].id != customer_id:  # merged: the survivor's page
        return redirect(f"{PATH}/customers/{context['customer'].id}")
    partial = visit.request.query.get("part") == "timeline"
    return visit.render("timeline.html" if partial else "customer.html", context)


@staff(Permission.CUSTOMERS)
async def download(visit: Visit) -> web.StreamResponse:
    info = visit.request.match_info
    if not info["message_id"].isdigit() or not info["index"].isdigit():
        raise NotFound("no such file")
    return await serve(int(info["message_id"]), int(info["index"]))


Action = Callable[[Visit, int, Any], Awaitable[None]]


def action(do: Action) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An inbox action: run it, then back to the page; a refusal of the core is shown there."""
    @staff(Permission.INBOX)
    async def view(visit: Visit) -> web.Response:
        customer_id = _id(visit)
        form = await visit.request.post()
        try:
            await do(visit, customer_id, form)
        except NotFound:
            raise
        except CrmError as e:
            context = await _context(visit, customer_id)
            context["error"] = str(e)
            return visit.render("customer.html", context,
                                status=409 if isinstance(e, Conflict) else 422)
        return redirect(f"{PATH}/customers/{customer_id}")

    view.__name__ = do.__name__
    return view


def _text(form: Any, name: str = "text") -> str:
    text = str(form.get(name, "")).strip()
    if not text:
        raise CrmError("write something first")
    if len(text) > MAX_TEXT:
        raise CrmError(f"the text is too long: at most {MAX_TEXT} characters")
    return text


def _conversation(form: Any) -> int | None:
    raw = str(form.get("conversation_id", ""))
    return int(raw) if raw.isdigit() else None


async def reply(visit: Visit, customer_id: int, form: Any) -> None:
    channel = REPLY_CHANNELS.get(str(form.get("channel", "")))
    nonce = str(form.get("nonce", ""))[:64] or uuid.uuid4().hex
    await visit.core.conversations.send(
        customer_id, _text(form), channel=channel, author=visit.manager,
        idempotency_key=f"console:{visit.manager.id}:{nonce}", actor=visit.actor,
        meta={"console": visit.manager.id})


async def note(visit: Visit, customer_id: int, form: Any) -> None:
    await visit.core.conversations.note(customer_id, _text(form), visit.manager)


async def assign(visit: Visit, customer_id: int, form: Any) -> None:
    raw = str(form.get("manager_id", ""))
    target = await visit.core.managers.get(int(raw)) if raw.isdigit() else None
    await visit.core.conversations.assign(customer_id, target, actor=visit.actor,
                                          conversation_id=_conversation(form))


async def status(visit: Visit, customer_id: int, form: Any) -> None:
    wanted = {"close": ConversationStatus.CLOSED, "reopen": ConversationStatus.OPEN}.get(
        str(form.get("to", "")))
    if wanted is None:
        raise CrmError("close or reopen?")
    await visit.core.conversations.set_status(customer_id, wanted, actor=visit.actor,
                                              conversation_id=_conversation(form))


async def tags(visit: Visit, customer_id: int, form: Any) -> None:
    add = str(form.get("add", "")).replace(",", " ").split()
    remove = str(form.get("remove", "")).replace(",", " ").split()
    await visit.core.customers.retag(customer_id, add=add, remove=remove, actor=visit.actor)


ACTIONS: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
    "reply": action(reply), "note": action(note), "assign": action(assign),
    "status": action(status), "tags": action(tags)}
