"""The tables of the CRM (Tortoise ORM). Schema changes go through crm/migrations."""

from __future__ import annotations

import functools
import json
from typing import Any

import tortoise.models
from tortoise import fields
from tortoise.models import Model

from crm.i18n import Text, customer_label
from crm.types import (
    Availability,
    CampaignState,
    Channel,
    ConsentKind,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    FactKind,
    OutboxState,
    RecipientState,
    Role,
    TaskKind,
    TaskState,
)

# Tortoise reads each model's `#:` comments (column descriptions) with inspect.getsource, which
# in Python 3.11 parses this whole module again for every class: half a second of every start,
# each `crm` command's included. We write no such comments, so there is nothing to read.
tortoise.models._get_comments = lambda cls: {}


def _json(default: Any) -> Any:
    """A JSON column as the migrations record it, with the standard library's JSON. Tortoise
    switches to orjson whenever it is installed (web/ uses it), and orjson refuses integers
    past 64 bits (free-form attributes may hold one: a 500 instead of the value) and reads
    them back as floats."""
    return fields.JSONField(default=default, encoder=_DUMPS, decoder=json.loads)


_DUMPS = functools.partial(json.dumps, separators=(",", ":"))


class Customer(Model):
    """One person, whatever channels they use."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, null=True)
    language = fields.CharField(max_length=8, null=True)
    timezone = fields.CharField(max_length=64, null=True)
    tags: fields.Field[list[str]] = _json(list)
    attributes: fields.Field[dict[str, object]] = _json(dict)
    lead_source = fields.CharField(max_length=200, null=True)
    merged_into: fields.ForeignKeyNullableRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", null=True, related_name=False, on_delete=fields.SET_NULL
    )
    merged_into_id: int | None
    erased_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField(null=True)

    class Meta:
        table = "customer"
        indexes = (("last_seen_at", "id"),)  # the API's list: most recently seen first

    def __str__(self) -> str:
        return self.name or f"customer #{self.id}"

    @property
    def label(self) -> Text:
        """How the team calls them: the name, else "customer #12" in the reader's language."""
        return customer_label(self.name, self.id)


class Identity(Model):
    """A (channel, address) leading to a customer: a Telegram user id, an email, an E.164 phone."""

    id = fields.IntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="identities", on_delete=fields.CASCADE
    )
    customer_id: int
    channel = fields.CharEnumField(Channel, max_length=16)
    address = fields.CharField(max_length=320)
    display_name = fields.CharField(max_length=200, null=True)
    undeliverable_reason = fields.CharField(max_length=500, null=True)
    undeliverable_at = fields.DatetimeField(null=True)
    # "opted_out": the recipient opted out at the provider (Twilio 21610), so only their
    # opt-in (START) clears the mark; None: any message from them clears it.
    undeliverable_kind = fields.CharField(max_length=16, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField(null=True)

    class Meta:
        table = "identity"
        unique_together = (("channel", "address"),)
        indexes = (("customer_id",),)  # a customer's addresses (cards, sends, merges)


class Manager(Model):
    """A member of the team: on Telegram (their user id), in the web console (an email and a
    password), or both."""

    id = fields.IntField(primary_key=True)
    telegram_user_id = fields.BigIntField(unique=True, null=True)
    email = fields.CharField(max_length=320, unique=True, null=True)  # lower-cased
    password_hash = fields.CharField(max_length=200, null=True)  # argon2id (crm/staff.py)
    name = fields.CharField(max_length=200)
    username = fields.CharField(max_length=64, null=True)
    role = fields.CharEnumField(Role, max_length=16, default=Role.MANAGER)
    availability = fields.CharEnumField(Availability, max_length=16, default=Availability.AWAY)
    capacity = fields.IntField(default=20)
    channels: fields.Field[list[str]] = _json(list)  # empty: every channel
    tags: fields.Field[list[str]] = _json(list)  # empty: every customer
    active = fields.BooleanField(default=True)
    # "en" or "ru": what the bot writes to this manager; None: their Telegram language, once
    # they write, else [telegram] managers_language.
    language = fields.CharField(max_length=8, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_assigned_at = fields.DatetimeField(null=True)  # round robin: the longest idle goes next

    class Meta:
        table = "manager"

    def __str__(self) -> str:
        return self.name


class Conversation(Model):
    """The thread of a customer with the team: open, waiting on the customer, or closed."""

    id = fields.IntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="conversations", on_delete=fields.CASCADE
    )
    customer_id: int
    status = fields.CharEnumField(ConversationStatus, max_length=16,
                                  default=ConversationStatus.OPEN)
    assignee: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", null=True, related_name="conversations", on_delete=fields.SET_NULL
    )
    assignee_id: int | None
    channel = fields.CharEnumField(Channel, max_length=16)  # the channel the customer last used
    subject = fields.CharField(max_length=500, null=True)
    opened_at = fields.DatetimeField(auto_now_add=True)
    closed_at = fields.DatetimeField(null=True)
    first_response_due = fields.DatetimeField(null=True)
    last_inbound_at = fields.DatetimeField(null=True)
    last_outbound_at = fields.DatetimeField(null=True)
    acknowledged = fields.BooleanField(default=False)  # the customer got the "we'll answer" note
    next_response_due = fields.DatetimeField(null=True)  # the customer wrote again after a reply
    queued_at = fields.DatetimeField(null=True)  # waiting for a free manager since (oldest first)
    after_hours_replied_at = fields.DatetimeField(null=True)
    survey_sent_at = fields.DatetimeField(null=True)
    rating = fields.SmallIntField(null=True)  # the customer's 1–5 answer to the survey
    rated_at = fields.DatetimeField(null=True)
    # Reports (crm/reports/facts.py): since when the customer waits for a person (None: nobody
    # owes them an answer), when a person first replied, and when it was last reopened.
    waiting_since = fields.DatetimeField(null=True)
    first_reply_at = fields.DatetimeField(null=True)
    reopened_at = fields.DatetimeField(null=True)

    class Meta:
        table = "conversation"
        # The last: the console's "waiting on us", the longest wait first (crm/inbox.py).
        indexes = (("customer_id", "status"), ("status", "assignee_id"), ("opened_at",),
                   ("survey_sent_at",), ("status", "last_inbound_at"))


class Message(Model):
    """An entry of a customer's timeline: inbound, outbound, internal note or system event."""

    id = fields.IntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="messages", on_delete=fields.CASCADE
    )
    customer_id: int
    conversation: fields.ForeignKeyNullableRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", null=True, related_name="messages", on_delete=fields.SET_NULL
    )
    conversation_id: int | None
    identity: fields.ForeignKeyNullableRelation[Identity] = fields.ForeignKeyField(
        "models.Identity", null=True, related_name="messages", on_delete=fields.SET_NULL
    )
    identity_id: int | None
    direction = fields.CharEnumField(Direction, max_length=8)
    channel = fields.CharEnumField(Channel, max_length=16)
    external_id = fields.CharField(max_length=300, null=True)
    text = fields.TextField(default="")
    attachments: fields.Field[list[dict[str, object]]] = _json(list)
    meta: fields.Field[dict[str, object]] = _json(dict)
    reply_to = fields.CharField(max_length=300, null=True)
    author: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", null=True, related_name="messages", on_delete=fields.SET_NULL
    )
    author_id: int | None
    # customer, manager, bot or system
    author_kind = fields.CharField(max_length=16, default="customer")
    delivery_status = fields.CharEnumField(DeliveryStatus, max_length=16,
                                           default=DeliveryStatus.RECEIVED)
    delivery_error = fields.CharField(max_length=500, null=True)
    automated = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)
    edited_at = fields.DatetimeField(null=True)

    class Meta:
        table = "message"
        unique_together = (("channel", "external_id"),)
        indexes = (("customer_id", "created_at"), ("conversation_id", "created_at"))


class Outbox(Model):
    """Every outbound message, written in the transaction of the event that caused it.

    Times the dispatcher compares in SQL (`due_ms`, `lease_ms`) are epoch milliseconds, so the
    claim query is the same plain SQL on SQLite and PostgreSQL.
    """

    id = fields.BigIntField(primary_key=True)
    channel = fields.CharEnumField(Channel, max_length=16)
    address = fields.CharField(max_length=320)
    payload: fields.Field[dict[str, object]] = _json(dict)
    idempotency_key = fields.CharField(max_length=200, unique=True)
    state = fields.CharEnumField(OutboxState, max_length=16, default=OutboxState.QUEUED)
    priority = fields.SmallIntField(default=0)
    attempts = fields.IntField(default=0)
    due_ms = fields.BigIntField()
    lease_ms = fields.BigIntField(null=True)
    last_error = fields.CharField(max_length=500, null=True)
    external_id = fields.CharField(max_length=300, null=True)
    message: fields.ForeignKeyNullableRelation[Message] = fields.ForeignKeyField(
        "models.Message", null=True, related_name="outbox", on_delete=fields.SET_NULL
    )
    message_id: int | None
    customer: fields.ForeignKeyNullableRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", null=True, related_name="outbox", on_delete=fields.SET_NULL
    )
    customer_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox"
        # customer_id: a merge or an erasure finds the customer's rows (a campaign writes one
        # per person) without reading the whole table.
        indexes = (("state", "channel", "priority", "id"), ("channel", "address", "state", "id"),
                   ("customer_id",))


class CustomerTopic(Model):
    """The forum topic of a customer in the managers' Telegram group."""

    id = fields.IntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="topics", on_delete=fields.CASCADE
    )
    customer_id: int
    chat_id = fields.BigIntField()
    thread_id = fields.BigIntField()
    closed = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "customer_topic"
        unique_together = (("chat_id", "thread_id"), ("customer_id", "chat_id"))


class Cursor(Model):
    """Where a channel stopped reading (Telegram update offset, IMAP UIDVALIDITY and last UID)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, unique=True)
    value: fields.Field[dict[str, object]] = _json(dict)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "cursor"


class AuditLog(Model):
    """Who did what to which customer; kept, without personal data, after a customer is erased."""

    id = fields.BigIntField(primary_key=True)
    actor = fields.CharField(max_length=200)  # "manager:12", "cli", "customer", "system"
    action = fields.CharField(max_length=64)
    customer_id = fields.IntField(null=True, db_index=True)  # not a FK: survives merge and erase
    detail: fields.Field[dict[str, object]] = _json(dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "audit_log"


class Task(Model):
    """Scheduled work with a due time: a reminder, a follow-up, a survey, a deadline check.

    The database is the truth and APScheduler only the timer: a row fires when it is due, in the
    transaction that marks it done (crm/tasks.py), so a restart loses none and fires none twice.
    """

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharEnumField(TaskKind, max_length=32)
    state = fields.CharEnumField(TaskState, max_length=16, default=TaskState.PENDING)
    due_at = fields.DatetimeField()
    key = fields.CharField(max_length=200, unique=True)  # idempotency: one row per cause
    customer: fields.ForeignKeyNullableRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", null=True, related_name="tasks", on_delete=fields.CASCADE
    )
    customer_id: int | None
    conversation: fields.ForeignKeyNullableRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", null=True, related_name="tasks", on_delete=fields.CASCADE
    )
    conversation_id: int | None
    manager: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", null=True, related_name="tasks", on_delete=fields.SET_NULL
    )
    manager_id: int | None
    text = fields.TextField(default="")
    payload: fields.Field[dict[str, object]] = _json(dict)
    attempts = fields.IntField(default=0)
    last_error = fields.CharField(max_length=500, null=True)
    created_by = fields.CharField(max_length=200, default="system")
    created_at = fields.DatetimeField(auto_now_add=True)
    done_at = fields.DatetimeField(null=True)

    class Meta:
        table = "task"
        indexes = (("state", "due_at"), ("conversation_id", "state"), ("manager_id", "state"))


class Consent(Model):
    """A customer's latest word on one kind of message on one channel (crm/consent.py).

    `channel` is a channel's value, or "*" for every channel (a STOPALL); the effective state on
    a channel is the newer of its own row and the "*" row, else the configured default. Each
    change is also written to the audit log with its source.
    """

    id = fields.BigIntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="consents", on_delete=fields.CASCADE
    )
    customer_id: int
    kind = fields.CharEnumField(ConsentKind, max_length=16)
    channel = fields.CharField(max_length=16)
    granted = fields.BooleanField()
    source = fields.CharField(max_length=32)
    actor = fields.CharField(max_length=200)
    changed_at = fields.DatetimeField()

    class Meta:
        table = "consent"
        unique_together = (("customer_id", "kind", "channel"),)
        indexes = (("kind", "channel", "granted"),)


class ApiKey(Model):
    """A key for the HTTP API (crm/apikeys.py): only a hash of the secret is stored.

    `prefix` is the start of the key, kept in the clear so people can tell keys apart in
    `crm apikeys list` and in logs without the secret.
    """

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=16)
    key_hash = fields.CharField(max_length=64, unique=True)
    scopes: fields.Field[list[str]] = _json(list)
    created_by = fields.CharField(max_length=200, default="cli")
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_key"


class CannedReply(Model):
    """A ready answer managers send with `/r KEY` (crm/replies.py): a Jinja2 template, one
    variant per language ("" is the variant for every other language)."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=64)
    language = fields.CharField(max_length=8, default="", db_default="")
    text = fields.TextField()
    # The text is Telegram's HTML (<b>, <i>, <a href>…), not plain text.
    html = fields.BooleanField(default=False, db_default=False)
    created_by = fields.CharField(max_length=200, default="cli")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "canned_reply"
        unique_together = (("key", "language"),)


class Order(Model):
    """An order of a customer (crm/orders): our number, the shop's, status, items, amount.

    `number_key` is the number as customers may type it (case and spaces ignored): the key of
    the upsert and of every lookup. Amounts are integers in the currency's minor unit (cents),
    so sums in SQL are exact on both databases.
    """

    id = fields.IntField(primary_key=True)
    number = fields.CharField(max_length=40)
    number_key = fields.CharField(max_length=40, unique=True)
    external_number = fields.CharField(max_length=100, null=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="orders", on_delete=fields.CASCADE
    )
    customer_id: int
    status = fields.CharField(max_length=32)
    items: fields.Field[list[dict[str, object]]] = _json(list)
    amount_minor = fields.BigIntField(null=True)
    currency = fields.CharField(max_length=3, null=True)
    placed_at = fields.DatetimeField(null=True)
    status_changed_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "customer_order"  # ORDER is an SQL keyword
        indexes = (("customer_id", "id"),)


class OrderEvent(Model):
    """One status an order entered: when, from where (api, import, manager), and a note.

    Notes are for the team: the customer's status page and answers show the status and time.
    """

    id = fields.BigIntField(primary_key=True)
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="events", on_delete=fields.CASCADE
    )
    order_id: int
    status = fields.CharField(max_length=32)
    previous_status = fields.CharField(max_length=32, null=True)
    source = fields.CharField(max_length=16)
    actor = fields.CharField(max_length=200)
    note = fields.TextField(default="")
    happened_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "order_event"
        indexes = (("order_id", "id"),)


class ReportFact(Model):
    """A customer's wait for the team, measured when it ended (crm/reports/facts.py): a first
    response, a reply or a resolution, in wall-clock and in business seconds.

    Recorded as it happens because business hours (time zone, holidays) cannot be counted in
    SQL on both databases, and finding "the first reply after the customer began to wait" in
    the timeline costs a scan of every message. Ids are plain integers, not foreign keys: the
    figures stay when a customer is erased (they hold no personal data).
    """

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharEnumField(FactKind, max_length=16)
    conversation_id = fields.IntField()
    customer_id = fields.IntField()
    manager_id = fields.IntField(null=True)  # who answered; for a resolution, the assignee
    channel = fields.CharField(max_length=16)
    started_at = fields.DatetimeField()
    ended_at = fields.DatetimeField()
    seconds = fields.BigIntField()
    business_seconds = fields.BigIntField()

    class Meta:
        table = "report_fact"
        # Reports select a period by `ended_at`; the funnel looks customers up.
        indexes = (("ended_at",), ("customer_id", "kind"), ("conversation_id",))


class StaffSession(Model):
    """A signed-in browser of the web console (crm/staff.py): only a hash of the cookie's token
    is stored, so a copy of the database signs nobody in."""

    id = fields.BigIntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    manager: fields.ForeignKeyRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", related_name="sessions", on_delete=fields.CASCADE
    )
    manager_id: int
    csrf = fields.CharField(max_length=64)  # the form token of this session
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)  # signed out

    class Meta:
        table = "staff_session"


class UsedLink(Model):
    """A one-time link that was used (a sign-in link from the bot, the first admin's link):
    the unique hash makes a second use fail, in any process."""

    id = fields.BigIntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    purpose = fields.CharField(max_length=32)
    used_at = fields.DatetimeField()

    class Meta:
        table = "used_link"


class SignInLock(Model):
    """Failed sign-ins counted per email and per client address; past the limit, a lockout."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=200, unique=True)  # "email:ann@example.com", "ip:…"
    failures = fields.IntField(default=0)
    first_failure_at = fields.DatetimeField(null=True)
    locked_until = fields.DatetimeField(null=True)

    class Meta:
        table = "sign_in_lock"


class Segment(Model):
    """Saved filters over customers (crm/campaigns/segments.py).

    A campaign takes its snapshot of the segment when sending starts. (No semicolon in a
    model's first docstring line: it becomes the SQL table comment, which migrations split on.)
    """

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    description = fields.TextField(default="")
    filters: fields.Field[dict[str, object]] = fields.JSONField(default=dict)
    created_by = fields.CharField(max_length=200, default="cli")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "segment"


class Campaign(Model):
    """A broadcast: content per channel in 1–3 variants, who (a segment), when, and its state.

    `spec` holds what the marketer wrote (crm/campaigns/spec.py: variants with content per
    channel, the channel preference, quiet hours, A/B test and error threshold), validated when
    stored; the columns are what the sending engine queries and updates.
    """

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    segment: fields.ForeignKeyNullableRelation[Segment] = fields.ForeignKeyField(
        "models.Segment", null=True, related_name="campaigns", on_delete=fields.SET_NULL)
    segment_id: int | None
    spec: fields.Field[dict[str, object]] = fields.JSONField(default=dict)
    state = fields.CharEnumField(CampaignState, max_length=16, default=CampaignState.DRAFT)
    state_reason = fields.CharField(max_length=500, null=True)  # why paused, missed, …
    start_at = fields.DatetimeField(null=True)
    # The segment's filters as they were when sending started (the snapshot's definition).
    segment_filters: fields.Field[dict[str, object]] = fields.JSONField(default=dict)
    created_by: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", null=True, related_name="campaigns", on_delete=fields.SET_NULL)
    created_by_id: int | None  # the marketer: told when it pauses, gets the test sends
    actor = fields.CharField(max_length=200, default="cli")
    winner = fields.CharField(max_length=8, null=True)  # the A/B test's winning variant
    test_sent_at = fields.DatetimeField(null=True)  # the A/B test group was sent; wait from here
    winner_at = fields.DatetimeField(null=True)
    expanded_at = fields.DatetimeField(null=True)  # every recipient of the snapshot is stored
    recipients_total = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "campaign"
        indexes = (("state", "start_at"),)


class CampaignRecipient(Model):
    """One person of a campaign: at most one row per (campaign, customer).

    So a person gets one variant, once, whatever restarts or resumes happen (the outbox row's
    idempotency key is `campaign:<id>:<customer>` too). `outbox_id` and `message_id` are plain
    columns, not foreign keys: a paused campaign's unsent rows are deleted from the outbox."""

    id = fields.BigIntField(primary_key=True)
    campaign: fields.ForeignKeyRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="recipients", on_delete=fields.CASCADE)
    campaign_id: int
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="campaign_rows", on_delete=fields.CASCADE)
    customer_id: int
    variant = fields.CharField(max_length=8, null=True)  # None: waits for the A/B winner
    channel = fields.CharField(max_length=16, null=True)
    state = fields.CharEnumField(RecipientState, max_length=16, default=RecipientState.PENDING)
    skip_reason = fields.CharField(max_length=32, null=True)
    error = fields.CharField(max_length=500, null=True)  # why the send failed
    due_at = fields.DatetimeField(null=True)  # deferred by quiet hours until then
    deferred = fields.BooleanField(default=False)
    outbox_id = fields.BigIntField(null=True)
    message_id = fields.IntField(null=True)
    queued_at = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)
    replied_at = fields.DatetimeField(null=True)
    clicked_at = fields.DatetimeField(null=True)
    opted_out_at = fields.DatetimeField(null=True)

    class Meta:
        table = "campaign_recipient"
        unique_together = (("campaign_id", "customer_id"),)
        indexes = (("campaign_id", "state", "id"), ("customer_id", "sent_at"), ("outbox_id",),
                   ("message_id",))


class AddressCheck(Model):
    """A code sent to an email address or a phone number that a customer gave (in the web
    chat), which links the address to them once they type it back (crm/verification.py). Only
    a MAC of the code is kept."""

    id = fields.BigIntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="address_checks", on_delete=fields.CASCADE
    )
    customer_id: int
    channel = fields.CharEnumField(Channel, max_length=16)
    address = fields.CharField(max_length=320)
    code_hash = fields.CharField(max_length=64)
    attempts = fields.IntField(default=0)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    confirmed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "address_check"
        indexes = (("customer_id", "id"),)
