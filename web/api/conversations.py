"""Conversations: list, read with messages, assign, close, reopen, notes; and the team."""

from __future__ import annotations

from typing import Any

import orjson

from crm.apikeys import Scope
from crm.models import Customer, Manager
from crm.queries import ConversationFilter
from crm.types import ConversationStatus
from crm.views import ConversationView
from web.api.customers import page_size
from web.api.problems import ApiProblem, unknown_id
from web.api.routes import Call, Reply, Routes
from web.api.schemas.common import channel
from web.api.schemas.conversations import (
    AssignIn,
    ConversationDetail,
    ConversationGetQuery,
    ConversationList,
    ConversationOut,
    ConversationQuery,
    ManagerList,
    MessageOut,
    NoteIn,
)

routes = Routes("conversations")
READ, WRITE = (Scope.CONVERSATIONS_READ,), (Scope.CONVERSATIONS_WRITE,)
_LIVE = (ConversationStatus.OPEN, ConversationStatus.WAITING)


@routes.route("GET", "/conversations", summary="List conversations", scopes=READ,
              response=ConversationList, query=ConversationQuery, errors=(400, 422))
async def list_conversations(call: Call[None, ConversationQuery]) -> Reply:
    """Newest first. `waiting_on_us`: open, and the customer's last message is unanswered. A
    `customer_id` or `assignee_id` that does not exist is a 422 naming it."""
    q = call.query
    if q.customer_id is not None and not await Customer.filter(id=q.customer_id).exists():
        raise unknown_id("query", "customer_id", f"no customer #{q.customer_id}")
    if q.assignee_id is not None and not await Manager.filter(id=q.assignee_id).exists():
        # Any manager, removed ones too: their conversations can still be listed.
        raise unknown_id("query", "assignee_id",
                         f"no manager #{q.assignee_id} (see GET /managers)")
    page = await call.core.queries.conversations(
        ConversationFilter(status=q.status, assignee_id=q.assignee_id, unassigned=q.unassigned,
                           waiting_on_us=q.waiting_on_us, channel=channel(q.channel),
                           customer_id=q.customer_id),
        page_size(call, q.limit), q.cursor)
    # = ConversationList (tests/web checks it), straight from the views: orjson writes them a
    # few times faster than pydantic's serializer, in the same JSON (UTC as Z).
    return Reply(body=orjson.dumps(page, option=orjson.OPT_UTC_Z))


@routes.route("GET", "/conversations/{id}", summary="Get a conversation with its messages",
              scopes=READ, response=ConversationDetail, query=ConversationGetQuery,
              errors=(400, 404, 422))
async def get_conversation(call: Call[None, ConversationGetQuery]) -> ConversationDetail:
    """The messages come oldest first, a page at a time (`messages_cursor`)."""
    conversation = await call.core.queries.conversation(call.path["id"])
    page = await call.core.queries.messages(conversation.id,
                                            page_size(call, call.query.messages_limit),
                                            call.query.messages_cursor)
    return ConversationDetail(
        **dict(ConversationOut.model_validate(conversation)),
        messages=[MessageOut.model_validate(m) for m in page.items],
        messages_next_cursor=page.next_cursor)


async def _latest(call: Call[Any, Any]) -> ConversationView:
    """The conversation of the path, if it is its customer's latest: only that one can change."""
    conversation = await call.core.queries.conversation(call.path["id"])
    current = await call.core.conversations.current(conversation.customer_id)
    if current is not None and current.id != conversation.id:
        raise ApiProblem(409, "not-latest-conversation",
                         f"conversation #{conversation.id} is not the customer's latest: act on "
                         f"#{current.id}")
    return conversation


async def _out(call: Call[Any, Any]) -> ConversationOut:
    return ConversationOut.model_validate(await call.core.queries.conversation(call.path["id"]))


@routes.route("POST", "/conversations/{id}/assign", summary="Assign a conversation",
              scopes=WRITE, response=ConversationOut, body=AssignIn, errors=(404, 409, 422))
async def assign_conversation(call: Call[AssignIn, None]) -> ConversationOut:
    conversation = await _latest(call)
    manager = None
    if call.body.manager_id is not None:
        manager = await Manager.filter(id=call.body.manager_id, active=True).first()
        if manager is None:
            raise unknown_id("body", "manager_id",
                             f"no active manager #{call.body.manager_id} (see GET /managers)")
    if conversation.assignee_id != call.body.manager_id:
        await call.core.conversations.assign(conversation.customer_id, manager,
                                             actor=call.principal.actor,
                                             conversation_id=conversation.id)
    return await _out(call)


async def _status(call: Call[Any, Any], status: ConversationStatus) -> ConversationOut:
    if status is ConversationStatus.CLOSED:
        conversation = await call.core.queries.conversation(call.path["id"])
        if conversation.status is ConversationStatus.CLOSED:
            return ConversationOut.model_validate(conversation)  # already: nothing to do
        conversation = await _latest(call)
    else:
        conversation = await _latest(call)
        if conversation.status in _LIVE:
            return ConversationOut.model_validate(conversation)
    await call.core.conversations.set_status(conversation.customer_id, status,
                                             actor=call.principal.actor,
                                             conversation_id=conversation.id)
    return await _out(call)


@routes.route("POST", "/conversations/{id}/close", summary="Close a conversation",
              scopes=WRITE, response=ConversationOut, errors=(404, 409))
async def close_conversation(call: Call[None, None]) -> ConversationOut:
    """Closing a closed conversation changes nothing."""
    return await _status(call, ConversationStatus.CLOSED)


@routes.route("POST", "/conversations/{id}/reopen", summary="Reopen a conversation",
              scopes=WRITE, response=ConversationOut, errors=(404, 409))
async def reopen_conversation(call: Call[None, None]) -> ConversationOut:
    """Only a customer's latest conversation can be reopened; an open one stays as it is."""
    return await _status(call, ConversationStatus.OPEN)


@routes.route("POST", "/conversations/{id}/notes", summary="Add an internal note", scopes=WRITE,
              response=MessageOut, status=201, body=NoteIn, errors=(404, 409, 422))
async def add_note(call: Call[NoteIn, None]) -> Reply:
    """Kept in the timeline, seen by the team, never sent to the customer."""
    conversation = await _latest(call)
    note = await call.core.conversations.note(conversation.customer_id, call.body.text, None,
                                              actor=call.principal.actor)
    return Reply(MessageOut.model_validate(await call.core.queries.message(note.id)), 201)


team = Routes("managers")


@team.route("GET", "/managers", summary="List the managers",
            scopes=(Scope.CONVERSATIONS_READ, Scope.CONVERSATIONS_WRITE, Scope.CUSTOMERS_READ),
            response=ManagerList)
async def list_managers(call: Call[None, None]) -> ManagerList:
    """Active managers, for assigning conversations."""
    return ManagerList.model_validate({"items": await call.core.queries.managers()})
