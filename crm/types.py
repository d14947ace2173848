"""Values that cross layers: channel kinds, statuses, inbound and outbound messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    TELEGRAM = "telegram"
    EMAIL = "email"
    SMS = "sms"
    # The chat widget on the shop's own site (channels/webchat): the address is a visitor id.
    WEBCHAT = "webchat"
    # A channel for tests and local tools; never configured in production.
    TEST = "test"
    # Events POSTed to the receivers in `[[webhooks]]` (web/webhooks.py); no customer's address.
    WEBHOOK = "webhook"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    NOTE = "note"  # internal note of a manager: never sent
    EVENT = "event"  # a system event in the timeline (assignment, bounce, auto-reply, …)


class DeliveryStatus(StrEnum):
    RECEIVED = "received"  # inbound
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class ConversationStatus(StrEnum):
    OPEN = "open"
    WAITING = "waiting"  # we answered; waiting on the customer
    CLOSED = "closed"


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    MARKETER = "marketer"
    LEAD = "lead"  # reads the reports (/report) like an admin; answers customers like a manager


class Availability(StrEnum):
    ONLINE = "online"
    AWAY = "away"


class OutboxState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ConsentKind(StrEnum):
    """What a customer may agree to receive, each on its own (crm/consent.py)."""

    MARKETING = "marketing"  # news, offers, campaigns
    NOTIFICATIONS = "notifications"  # transactional: order status updates


class ConsentSource(StrEnum):
    """Where a consent change came from; kept with every change (crm/consent.py)."""

    KEYWORD = "keyword"  # an SMS or email that is just STOP, START, …
    COMMAND = "command"  # a Telegram command (/stop, /start)
    BUTTON = "button"  # a button or a numbered choice
    LINK = "link"  # the unsubscribe page
    EMAIL = "email"  # mail to the List-Unsubscribe mailto address
    GATEWAY = "gateway"  # the SMS provider handled the keyword itself (Twilio Advanced Opt-Out)
    API = "api"
    MANAGER = "manager"
    IMPORT = "import"
    CLI = "cli"
    MIGRATION = "migration"  # carried over from the single opt-out flag of before


class WebhookEvent(StrEnum):
    """What a `[[webhooks]]` receiver can subscribe to (crm/webhooks.py maps core events)."""

    MESSAGE_RECEIVED = "message.received"
    MESSAGE_SENT = "message.sent"
    MESSAGE_FAILED = "message.failed"
    CONVERSATION_OPENED = "conversation.opened"
    CONVERSATION_ASSIGNED = "conversation.assigned"
    CONVERSATION_CLOSED = "conversation.closed"
    CUSTOMER_OPTED_OUT = "customer.opted_out"
    ORDER_STATUS_CHANGED = "order.status_changed"
    CAMPAIGN_FINISHED = "campaign.finished"


class CampaignState(StrEnum):
    """Where a campaign is (crm/campaigns): a draft until scheduled; `missed` when its start
    passed while the service was down for longer than `[campaigns] missed_after`."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    MISSED = "missed"
    SENDING = "sending"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FINISHED = "finished"

    @property
    def final(self) -> bool:
        return self in (CampaignState.CANCELLED, CampaignState.FINISHED)


class RecipientState(StrEnum):
    """One person of a campaign: pending (not queued yet, maybe deferred by quiet hours),
    queued (an outbox row waits), sent or failed (the outbox's outcome), skipped (why:
    `SkipReason`), or cancelled with the campaign."""

    PENDING = "pending"
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class SkipReason(StrEnum):
    NO_CONSENT = "no_consent"  # an address on a chosen channel, but no marketing consent there
    UNREACHABLE = "unreachable"  # no usable address on any chosen channel
    OPTED_OUT = "opted_out"  # opted out while the campaign ran, before their message went
    ERASED = "erased"  # `crm customers forget` while the campaign ran


class Priority:
    """Outbox lanes: a lower number goes first."""

    LIVE = 0  # a reply in a live conversation, a bot answer
    NOTIFY = 5  # mirrors and notifications to managers
    BULK = 10  # campaigns and follow-ups


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with a message; where the bytes live is the adapter's business."""

    kind: str  # photo, document, voice, video, sticker, location, contact, file, …
    file_id: str | None = None  # the provider's handle (Telegram file_id) or a content hash
    filename: str | None = None
    mime_type: str | None = None
    size: int | None = None
    path: str | None = None  # content-addressed path on disk, when stored locally
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in (
            ("kind", self.kind), ("file_id", self.file_id), ("filename", self.filename),
            ("mime_type", self.mime_type), ("size", self.size), ("path", self.path),
            ("meta", self.meta or None),
        ) if v is not None}


@dataclass(frozen=True, slots=True)
class Choice:
    """One answer a customer can pick: a Telegram button, a numbered line in SMS or email.

    `action` is what comes back when it is picked (a button's data, or the line's number mapped
    back by the dialogue); `request` asks the channel for something only it can give ("phone":
    Telegram's share-my-number button) and is left out where the channel cannot.
    """

    action: str
    label: str
    request: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"action": self.action, "label": self.label}
        if self.request:
            out["request"] = self.request
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Choice:
        return cls(str(data.get("action") or ""), str(data.get("label") or ""),
                   str(data["request"]) if data.get("request") else None)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """What an adapter hands to ingest: one message from one sender on one channel."""

    channel: Channel
    external_id: str  # unique per channel; the dedupe key
    sender: str  # raw address: Telegram user id, email address, phone number
    text: str = ""
    sender_name: str | None = None
    attachments: tuple[Attachment, ...] = ()
    reply_to: str | None = None  # external id of the message this answers
    thread_refs: tuple[str, ...] = ()  # further references (email References)
    sent_at: datetime | None = None  # the source's time, if it gives one
    headers: dict[str, Any] = field(default_factory=dict)
    language: str | None = None  # e.g. Telegram's language_code
    # Auto-replies, bounces, delivery notices: stored as events, never answered.
    automated: bool = False
    # An edit of an earlier message (external id of the original).
    edit_of: str | None = None
    # A command the channel marks as one (Telegram's `/start payload`: "start"); the dialogue
    # (bot/customer.py) sets it to the intent it recognised, and the timeline records such a
    # message without routing it to managers.
    command: str | None = None
    # A button the customer pressed: the `action` of one of our Choices.
    action: str | None = None


@dataclass(frozen=True, slots=True)
class StaffMessage:
    """What a member of the team wrote to the bot: in the managers' group (a customer's topic or
    the General one) or in a private chat. The Telegram adapter makes it; bot/desk.py acts."""

    channel: Channel
    user_id: int  # the writer's id on the channel (Telegram user id)
    chat_id: int
    message_id: int
    text: str = ""
    thread_id: int | None = None  # the forum topic, in the managers' group
    in_team_chat: bool = False  # the managers' group, not a private chat
    command: str | None = None  # "/remind@our_bot 2d …" -> "remind" (addressed to us)
    args: str = ""
    reply_to_text: str | None = None  # the text of the message this one answers
    attachments: tuple[Attachment, ...] = ()
    # An edit of this message (message_id) that the writer made; the new text is `text`.
    edited: bool = False
    language: str | None = None  # the writer's language on the channel (Telegram's code)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message for an adapter to send."""

    channel: Channel
    address: str
    text: str
    outbox_id: int = 0
    subject: str | None = None
    html: str | None = None
    reply_to: str | None = None  # external id of the customer's message we answer
    thread_refs: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)  # channel specifics (thread id, markup)
    # Answers the customer can pick; each channel renders them its own way (buttons, numbers).
    choices: tuple[Choice, ...] = ()
    language: str | None = None  # of the customer, for the words a channel adds (SMS choices)

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "text": self.text, "subject": self.subject, "html": self.html,
            "reply_to": self.reply_to, "thread_refs": list(self.thread_refs),
            "attachments": [a.to_json() for a in self.attachments], "options": self.options,
        }
        if self.choices:
            payload["choices"] = [c.to_json() for c in self.choices]
        if self.language:
            payload["language"] = self.language
        return payload

    @classmethod
    def from_payload(
        cls, channel: Channel, address: str, payload: dict[str, Any], outbox_id: int = 0
    ) -> OutboundMessage:
        return cls(
            channel=channel, address=address, text=payload.get("text") or "",
            outbox_id=outbox_id, subject=payload.get("subject"), html=payload.get("html"),
            reply_to=payload.get("reply_to"), thread_refs=tuple(payload.get("thread_refs") or ()),
            attachments=tuple(Attachment(**a) for a in payload.get("attachments") or ()),
            options=dict(payload.get("options") or {}),
            choices=tuple(Choice.from_json(c) for c in payload.get("choices") or ()
                          if isinstance(c, dict)),
            language=payload.get("language") or None,
        )


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What an adapter's send returns: sent, or a retryable or final error."""

    outcome: Outcome
    external_id: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the channel asked us to wait
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. SMS segments
    # A permanent error that is the address's fault (blocked, bounced, invalid number) marks the
    # identity undeliverable; one that is ours (bad credentials, a message too long) does not.
    address_fault: bool = True
    # The recipient opted out at the provider (Twilio 21610): only their opt-in clears the mark.
    opted_out: bool = False

    @classmethod
    def sent(cls, external_id: str | None, **meta: Any) -> DeliveryResult:
        return cls(Outcome.SENT, external_id=external_id, meta=meta)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(Outcome.RETRY, error=error, retry_after=retry_after)

    @classmethod
    def permanent(cls, error: str, *, address_fault: bool = True,
                  opted_out: bool = False) -> DeliveryResult:
        return cls(Outcome.PERMANENT, error=error, address_fault=address_fault,
                   opted_out=opted_out)


class TaskKind(StrEnum):
    """What a scheduled row does when it is due (crm/tasks.py)."""

    REMINDER = "reminder"  # a manager's own reminder (/remind)
    FOLLOWUP = "followup"  # a manager's scheduled message to the customer (/followup)
    AUTO_FOLLOWUP = "auto_followup"  # the bot chases a silent customer (config [followups])
    SURVEY = "survey"  # the 1–5 rating question after a conversation is closed
    DEADLINE_WARNING = "deadline_warning"  # the response deadline is near: remind the assignee
    DEADLINE_MISSED = "deadline_missed"  # the deadline passed: flag and reassign
    ESCALATION = "escalation"  # a reminder nobody acted on: tell the admins
    REPORT_DIGEST = "report_digest"  # the weekly report to the admins (crm/reports/digest.py)


class FactKind(StrEnum):
    """A measured wait of a customer, recorded when it ends (crm/reports/facts.py)."""

    FIRST_RESPONSE = "first_response"  # the first reply by a person in a conversation
    REPLY = "reply"  # a later reply by a person to a customer who was waiting
    RESOLUTION = "resolution"  # the conversation was closed


class TaskState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"  # due, but no longer meaningful (the customer wrote, too late, …)
    CANCELLED = "cancelled"
    FAILED = "failed"
