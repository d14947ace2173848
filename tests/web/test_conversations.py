"""Conversations and the team through the API: list, read with messages, assign, close, reopen,
notes."""

from __future__ import annotations

from crm import pagination
from crm.models import AuditLog, Conversation, Message
from crm.types import ConversationStatus, Direction, Role
from tests.web.conftest import Api
from tests.web.test_auth import is_problem


async def _conversation(api: Api, cid: int) -> int:
    current = await api.core.conversations.current(cid)
    assert current is not None
    return current.id


async def test_list_with_filters_and_pages(api: Api) -> None:
    olga = await api.core.managers.add(7001, "Olga", Role.MANAGER)
    ids = [await api.customer(f"+1202555{n:04d}", name=f"P{n}") for n in range(4)]
    convs = [await _conversation(api, c) for c in ids]
    await api.core.conversations.assign(ids[0], olga, actor="test")
    await api.core.conversations.send(ids[1], "answer", author=olga)  # now waiting on them
    await api.core.conversations.set_status(ids[2], ConversationStatus.CLOSED, actor="test")

    page = await api.get("/api/v1/conversations", params={"limit": "3"})
    assert [c["id"] for c in page.body["items"]] == convs[::-1][:3]
    rest = await api.get("/api/v1/conversations", params={"cursor": page.body["next_cursor"]})
    assert [c["id"] for c in rest.body["items"]] == [convs[0]]
    assert rest.body["next_cursor"] is None

    async def ids_for(**params: str) -> list[int]:
        answer = await api.get("/api/v1/conversations", params=params)
        assert answer.status == 200, answer.text
        return [c["id"] for c in answer.body["items"]]

    assert await ids_for(assignee_id=str(olga.id)) == [convs[0]]
    assert convs[0] not in await ids_for(unassigned="true")
    assert await ids_for(status="closed") == [convs[2]]
    assert await ids_for(waiting_on_us="true") == [convs[3], convs[0]]
    assert await ids_for(customer_id=str(ids[1])) == [convs[1]]
    assert await ids_for(channel="email") == []
    is_problem(await api.get("/api/v1/conversations", params={"status": "lost"}), 422,
               "validation-error")
    # An id in the query that leads nowhere is refused, naming the field (not an empty page).
    for field, value in (("customer_id", "4242"), ("assignee_id", "99999")):
        answer = await api.get("/api/v1/conversations", params={field: value})
        is_problem(answer, 422, "validation-error")
        assert [(e["in"], e["field"], e["code"]) for e in answer.body["errors"]] == [
            ("query", field, "not_found")]
    managers = await api.get("/api/v1/managers")
    assert [(m["id"], m["name"]) for m in managers.body["items"]] == [(olga.id, "Olga")]


async def test_get_with_messages_paged_oldest_first(api: Api) -> None:
    cid = await api.customer(text="one")
    for n in ("two", "three"):
        await api.customer(text=n)
    conv = await _conversation(api, cid)
    first = await api.get(f"/api/v1/conversations/{conv}", params={"messages_limit": "2"})
    assert first.status == 200
    assert [m["text"] for m in first.body["messages"]] == ["one", "two"]
    more = await api.get(f"/api/v1/conversations/{conv}",
                         params={"messages_cursor": first.body["messages_next_cursor"]})
    assert [m["text"] for m in more.body["messages"]] == ["three"]
    assert more.body["messages_next_cursor"] is None
    is_problem(await api.get("/api/v1/conversations/9999"), 404, "not-found")
    # A cursor of another list is refused, not misread.
    wrong_list = await api.get(f"/api/v1/conversations/{conv}", params={
        "messages_cursor": pagination.encode("customers", None, 1)})
    is_problem(wrong_list, 400, "invalid-cursor")


async def test_assign_close_reopen_and_notes_are_audited(api: Api) -> None:
    olga = await api.core.managers.add(7002, "Olga", Role.MANAGER)
    cid = await api.customer(name="Ann")
    conv = await _conversation(api, cid)
    assigned = await api.post(f"/api/v1/conversations/{conv}/assign", {"manager_id": olga.id})
    assert assigned.status == 200 and assigned.body["assignee_id"] == olga.id
    nobody = await api.post(f"/api/v1/conversations/{conv}/assign", {"manager_id": 4242})
    is_problem(nobody, 422, "validation-error")
    assert nobody.body["errors"][0]["field"] == "manager_id"
    closed = await api.post(f"/api/v1/conversations/{conv}/close")
    assert closed.status == 200 and closed.body["status"] == "closed"
    again = await api.post(f"/api/v1/conversations/{conv}/close")
    assert again.status == 200 and again.body["status"] == "closed"
    reopened = await api.post(f"/api/v1/conversations/{conv}/reopen")
    assert reopened.body["status"] == "open"
    note = await api.post(f"/api/v1/conversations/{conv}/notes", {"text": "VIP, be quick"})
    assert note.status == 201 and note.body["direction"] == "note"
    assert note.body["author_kind"] == "api"
    is_problem(await api.post(f"/api/v1/conversations/{conv}/notes", {"text": ""}), 422,
               "validation-error")
    is_problem(await api.post(f"/api/v1/conversations/{conv}/close", {"now": True}), 422,
               "validation-error")
    actions = await AuditLog.filter(actor="api:default", customer_id=cid).order_by(
        "id").values_list("action", flat=True)
    assert actions == ["assign", "conversation.closed", "conversation.open", "note.added"]
    assert await Message.filter(direction=Direction.NOTE, text="VIP, be quick").exists()


async def test_only_the_latest_conversation_changes(api: Api) -> None:
    cid = await api.customer(text="first")
    old = await _conversation(api, cid)
    await api.core.conversations.set_status(cid, ConversationStatus.CLOSED, actor="test")
    await Conversation.filter(id=old).update(closed_at=api.core.clock().replace(year=2020))
    await api.customer(text="much later")  # past the reopen window: a new conversation
    new = await _conversation(api, cid)
    assert new != old
    is_problem(await api.post(f"/api/v1/conversations/{old}/reopen"), 409,
               "not-latest-conversation")
    assert (await api.post(f"/api/v1/conversations/{old}/close")).status == 200  # already
