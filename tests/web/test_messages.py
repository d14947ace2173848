"""Sending through the API: the outbox, once per Idempotency-Key; the message's status."""

from __future__ import annotations

import asyncio

from crm.apikeys import Scope
from crm.deadlines import SLA_KINDS
from crm.models import AuditLog, Message, Outbox, Task
from crm.types import Channel, Direction, TaskState
from tests.web.conftest import Api
from tests.web.test_auth import is_problem


async def test_send_goes_through_the_outbox_and_its_status_can_be_followed(api: Api) -> None:
    cid = await api.customer("+12025550143", name="Ann")
    answer = await api.post(f"/api/v1/customers/{cid}/messages",
                            {"text": "Your order <b>shipped</b>"})
    assert answer.status == 202, answer.text
    body = answer.body
    assert body["status"] in ("queued", "sent") and body["channel"] == "sms"
    assert body["text"] == "Your order <b>shipped</b>" and body["author_kind"] == "api"
    assert answer.headers["Location"] == f"/api/v1/messages/{body['id']}"
    await api.delivery(body["id"])
    [sent] = await api.sms.wait_sent(1)
    assert sent.address == "+12025550143" and sent.text == "Your order <b>shipped</b>"
    status = await api.get(f"/api/v1/messages/{body['id']}")
    assert status.status == 200 and status.body["status"] == "sent"
    assert status.body["sent_at"] is not None
    assert await AuditLog.filter(actor="api:default", action="message.queued",
                                 customer_id=cid).count() == 1
    reader = await api.key_with(Scope.CONVERSATIONS_READ, name="reader")
    assert (await api.get(f"/api/v1/messages/{body['id']}", key=reader)).status == 200
    is_problem(await api.get("/api/v1/messages/987654"), 404, "not-found")


async def test_one_idempotency_key_makes_one_outbox_row(api: Api) -> None:
    cid = await api.customer("+12025550143")
    headers = {"Idempotency-Key": "order-1001-shipped"}
    first = await api.post(f"/api/v1/customers/{cid}/messages", {"text": "Shipped!"},
                           headers=headers)
    again = await api.post(f"/api/v1/customers/{cid}/messages", {"text": "Shipped!"},
                           headers=headers)
    assert first.status == again.status == 202
    assert first.body["id"] == again.body["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await Outbox.filter(channel=Channel.SMS).count() == 1
    assert await Message.filter(direction=Direction.OUT).count() == 1
    # The same key for another request is refused, and sends nothing.
    other = await api.post(f"/api/v1/customers/{cid}/messages", {"text": "Delivered!"},
                           headers=headers)
    is_problem(other, 422, "idempotency-key-reused")
    # Requests running side by side with one key still make one row.
    same = {"Idempotency-Key": "parallel"}
    answers = await asyncio.gather(*(api.post(f"/api/v1/customers/{cid}/messages",
                                              {"text": "once"}, headers=same)
                                     for _ in range(4)))
    assert {a.status for a in answers} == {202} and len({a.body["id"] for a in answers}) == 1
    assert await Outbox.filter(channel=Channel.SMS).count() == 2
    assert await Message.filter(direction=Direction.OUT).count() == 2
    assert sum("Idempotent-Replayed" in a.headers for a in answers) == 3
    # Keys are per API key: another client's identical key is its own message.
    other_key = await api.key_with(Scope.MESSAGES_SEND, name="other")
    theirs = await api.post(f"/api/v1/customers/{cid}/messages", {"text": "Shipped!"},
                            headers=headers, key=other_key)
    assert theirs.status == 202 and theirs.body["id"] != first.body["id"]


async def test_send_on_a_chosen_channel_and_the_refusals(api: Api) -> None:
    cid = await api.customer("+12025550143")
    await api.core.customers.add_identity(cid, Channel.EMAIL, "ann@example.com", actor="test")
    no_sender = await api.post(f"/api/v1/customers/{cid}/messages",
                               {"text": "by mail", "channel": "email", "subject": "Hi"})
    assert no_sender.status == 202 and no_sender.body["channel"] == "email"
    no_address = await api.post(f"/api/v1/customers/{cid}/messages",
                                {"text": "x", "channel": "telegram"})
    is_problem(no_address, 422, "rejected")
    assert "no address on telegram" in no_address.body["detail"]
    for body, field in (({}, "text"), ({"text": ""}, "text"), ({"text": 3}, "text"),
                        ({"text": "x", "channel": "test"}, "channel"),
                        ({"text": "x", "html": "<b>"}, "html")):
        answer = await api.post(f"/api/v1/customers/{cid}/messages", body)
        is_problem(answer, 422, "validation-error")
        assert [e["field"] for e in answer.body["errors"]] == [field]
    bad_key = await api.post(f"/api/v1/customers/{cid}/messages", {"text": "x"},
                             headers={"Idempotency-Key": "has spaces"})
    is_problem(bad_key, 422, "validation-error")
    assert bad_key.body["errors"][0]["in"] == "header"
    is_problem(await api.post("/api/v1/customers/424242/messages", {"text": "x"}), 404,
               "not-found")
    assert await Message.filter(direction=Direction.OUT).count() == 1


async def test_a_message_sent_through_the_api_answers_the_customer(api: Api) -> None:
    cid = await api.customer("+12025550143", text="Where is my order?")
    [conv] = (await api.get("/api/v1/conversations", params={"waiting_on_us": "true"})
              ).body["items"]
    assert conv["customer_id"] == cid and conv["first_response_due"] is not None
    assert await Task.filter(conversation_id=conv["id"], kind__in=SLA_KINDS,
                             state=TaskState.PENDING).exists()

    sent = await api.post(f"/api/v1/customers/{cid}/messages", {"text": "It ships today"})
    assert sent.status == 202, sent.text
    # As a manager's reply would: the customer's wait is over, and so is the deadline.
    assert (await api.get("/api/v1/conversations", params={"waiting_on_us": "true"})
            ).body["items"] == []
    after = (await api.get(f"/api/v1/conversations/{conv['id']}")).body
    assert after["status"] == "waiting" and after["first_response_due"] is None
    assert after["last_outbound_at"] is not None
    assert not await Task.filter(conversation_id=conv["id"], kind__in=SLA_KINDS,
                                 state=TaskState.PENDING).exists()

    # The customer writes again: waiting on us, with a next-response deadline; an API answer
    # ends that one too.
    await api.customer("+12025550143", text="Thanks! And the invoice?")
    [again] = (await api.get("/api/v1/conversations", params={"waiting_on_us": "true"})
               ).body["items"]
    assert again["id"] == conv["id"]
    assert await Task.filter(conversation_id=conv["id"], kind__in=SLA_KINDS,
                             state=TaskState.PENDING).exists()
    await api.post(f"/api/v1/customers/{cid}/messages", {"text": "Attached to your email"})
    assert (await api.get("/api/v1/conversations", params={"waiting_on_us": "true"})
            ).body["items"] == []
    assert not await Task.filter(conversation_id=conv["id"], kind__in=SLA_KINDS,
                                 state=TaskState.PENDING).exists()
