"""Messages: send one to a customer through the outbox, once per Idempotency-Key; read one."""

from __future__ import annotations

import hashlib
import re
import uuid

from tortoise.exceptions import IntegrityError

from crm.apikeys import Scope
from crm.errors import NotFound
from crm.models import Message, Outbox
from web.api.problems import ApiProblem, field_error
from web.api.routes import Call, Header, Reply, Routes
from web.api.schemas.common import channel
from web.api.schemas.conversations import MessageOut, SendIn

routes = Routes("messages")
_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")
IDEMPOTENCY = Header("Idempotency-Key", "Any unique string (a UUID): a retried request with the "
                     "same key and body sends once and answers as the first did; the same key "
                     "with another body is a 422.", max_length=100)


def _fingerprint(customer_id: int, raw: bytes) -> str:
    return hashlib.sha256(f"{customer_id}\n".encode() + raw).hexdigest()


async def _earlier(scoped_key: str, fingerprint: str) -> Message | None:
    row = await Outbox.filter(idempotency_key=scoped_key).only("message_id").first()
    if row is None or row.message_id is None:
        return None
    message = await Message.get(id=row.message_id)
    api = message.meta.get("api")
    if not isinstance(api, dict) or api.get("fingerprint") != fingerprint:
        raise ApiProblem(422, "idempotency-key-reused",
                         "this Idempotency-Key was used for another request: use a new key for "
                         "a new message", title="Idempotency-Key reused")
    return message


async def _send(call: Call[SendIn, None], customer_id: int, scoped: str | None,
                fingerprint: str) -> tuple[Message, bool]:
    """The message, and whether it was sent by an earlier request with the same key."""
    for attempt in (1, 2):
        if scoped is not None:
            earlier = await _earlier(scoped, fingerprint)
            if earlier is not None:
                return earlier, True
        request_id = uuid.uuid4().hex
        try:
            message = await call.core.conversations.send(
                customer_id, call.body.text, channel=channel(call.body.channel),
                subject=call.body.subject, author_kind="api", idempotency_key=scoped,
                meta={"api": {"key": call.principal.name, "key_id": call.principal.key_id,
                              "fingerprint": fingerprint, "request": request_id}},
                actor=call.principal.actor)
            api = message.meta.get("api")
            if isinstance(api, dict) and api.get("request") == request_id:
                return message, False
            # Another request with this key committed first: answer as it did, if it asked
            # for the same.
            earlier = await _earlier(scoped or "", fingerprint)
            return earlier or message, True
        except IntegrityError:
            # A request with the same key running alongside won the race: answer as it did.
            if scoped is None or attempt == 2:
                raise
    raise AssertionError("unreachable")


@routes.route("POST", "/customers/{id}/messages", summary="Send a message to a customer",
              scopes=(Scope.MESSAGES_SEND,), response=MessageOut, status=202, body=SendIn,
              headers=(IDEMPOTENCY,), errors=(404, 422))
async def send_message(call: Call[SendIn, None]) -> Reply:
    """Queued in the outbox and sent on the customer's channel (the one they last wrote on, or
    `channel`); the answer carries the message's id and delivery status, which
    GET /messages/{id} follows."""
    key = call.header("Idempotency-Key")
    if key is not None and not _KEY.match(key):
        raise ApiProblem(422, "validation-error", "invalid Idempotency-Key", errors=[field_error(
            "header", field="Idempotency-Key", code="string_pattern_mismatch",
            message="1 to 100 printable ASCII characters, no spaces")])
    customer = await call.core.customers.get(call.path["id"])
    fingerprint = _fingerprint(customer.id, call.body.model_dump_json().encode())
    scoped = f"api:{call.principal.key_id}:{key}" if key is not None else None
    message, replayed = await _send(call, customer.id, scoped, fingerprint)
    view = await call.core.queries.message(message.id)
    headers = {"Location": f"/api/v1/messages/{message.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Reply(MessageOut.model_validate(view), 202, headers)


@routes.route("GET", "/messages/{id}", summary="Get a message and its delivery status",
              scopes=(Scope.MESSAGES_SEND, Scope.CONVERSATIONS_READ), response=MessageOut,
              errors=(404,))
async def get_message(call: Call[None, None]) -> MessageOut:
    """With `conversations:read`, any message; with only `messages:send`, the ones this key
    sent (a key that sends must not read every conversation by counting ids)."""
    if not call.principal.allows(Scope.CONVERSATIONS_READ):
        sent = await Message.get_or_none(id=call.path["id"])
        api = sent.meta.get("api") if sent is not None else None
        if not isinstance(api, dict) or api.get("key_id") != call.principal.key_id:
            raise NotFound(f"message #{call.path['id']} does not exist")
    return MessageOut.model_validate(await call.core.queries.message(call.path["id"]))
