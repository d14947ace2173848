"""A manager corrects a message they sent: the timeline keeps both versions, and the channel
changes what the customer sees where it can.

The shape of the history is the one ingest keeps for customers' edits (crm/timeline.py):
`meta["edits"]`, a list of `{"text": <the text before>, "replaced_at": <ISO time>}`, oldest
first, and `edited_at`. What reaches the customer depends on where the message is:
- still queued: the queued row now says the new text (any channel);
- sent, on a channel whose sender `edits` (Telegram): an edit row goes through the outbox;
- sent elsewhere (email, SMS): nothing is sent, and the manager is told so.

An edit row is not linked to its message (a failed edit must not mark the message, which the
customer did get, as failed); its options name the message and the edit instead. When the channel
refuses the edit (a bot blocked since, a text too long), the edit's entry in `meta["edits"]` gets
`not_delivered` with the reason, and the manager is told in the customer's topic.
"""

from __future__ import annotations

from enum import StrEnum

from crm.clock import Clock, utcnow
from crm.dispatcher import Dispatcher
from crm.errors import CrmError
from crm.events import DeliveryChanged, EventBus, MessageEdited, TeamNotice
from crm.i18n import Phrase
from crm.models import Manager, Message, Outbox
from crm.outbox import OutboxService
from crm.types import Channel, DeliveryStatus, OutboundMessage, OutboxState, Priority


class EditOutcome(StrEnum):
    SENT = "sent"  # the customer's copy is being changed
    UPDATED = "updated"  # not sent yet: it will go with the new text
    KEPT = "kept"  # the channel cannot change a sent message: the timeline has both
    UNCHANGED = "unchanged"


class Edits:
    def __init__(self, bus: EventBus, outbox: OutboxService, dispatcher: Dispatcher,
                 clock: Clock = utcnow) -> None:
        self.bus = bus
        self.outbox = outbox
        self.dispatcher = dispatcher
        self.clock = clock
        bus.subscribe(DeliveryChanged, self._refused, phase="in_transaction")

    async def by_key(self, idempotency_key: str) -> Message | None:
        """The message a send with this key made (the chat's `tg:<chat>:<message>`)."""
        row = await Outbox.filter(idempotency_key=idempotency_key).first()
        if row is None or row.message_id is None:
            return None
        return await Message.get_or_none(id=row.message_id)

    async def edit(self, message_id: int, text: str, editor: Manager | None,
                   *, key: str | None = None) -> tuple[EditOutcome, Channel]:
        """Replace the text of an outbound message. `key` makes a replayed edit a no-op."""
        if not text.strip():
            raise CrmError(Phrase("edit_empty"))
        async with self.bus.unit_of_work():
            message = await Message.filter(id=message_id).select_for_update().first()
            if message is None:
                raise CrmError(Phrase("message_missing", id=message_id))
            if message.text == text:
                return EditOutcome.UNCHANGED, message.channel
            now = self.clock()
            before = message.meta.get("edits")
            edits: list[object] = list(before) if isinstance(before, list) else []
            edits.append({"text": message.text, "replaced_at": now.isoformat(),
                          **({"by": f"manager:{editor.id}"} if editor else {})})
            message.meta = {**message.meta, "edits": edits}
            message.text, message.edited_at = text, now
            await message.save(update_fields=["meta", "text", "edited_at"])
            outcome = await self._deliver(message, text, key or f"edit:{message.id}:"
                                          f"{len(edits)}", len(edits), editor)
            await self.bus.emit(MessageEdited(message.id, message.customer_id, message.channel))
            return outcome, message.channel

    async def _deliver(self, message: Message, text: str, key: str, number: int,
                       editor: Manager | None) -> EditOutcome:
        row = await Outbox.filter(message_id=message.id).order_by("id").first()
        if row is None:
            return EditOutcome.KEPT
        if row.state is OutboxState.QUEUED:
            payload = {**row.payload, "text": text, "html": None}
            if await Outbox.filter(id=row.id, state=OutboxState.QUEUED).update(payload=payload):
                return EditOutcome.UPDATED
            row = await Outbox.get(id=row.id)
        if row.state is OutboxState.SENDING:
            raise CrmError(Phrase("edit_while_sending"))
        if not self.dispatcher.can_edit(message.channel) or row.state is not OutboxState.SENT \
                or not message.external_id or message.delivery_status is DeliveryStatus.FAILED:
            return EditOutcome.KEPT
        if message.meta.get("parts") not in (None, 1):
            return EditOutcome.KEPT  # sent in parts: no one message holds the text
        await self.outbox.enqueue(
            OutboundMessage(message.channel, row.address, text,
                            options={"edit_of": message.external_id,
                                     "edit_caption": bool(message.attachments),
                                     "edited_message_id": message.id, "edit_number": number,
                                     "edited_by": editor.id if editor else None}),
            idempotency_key=key[:200], priority=Priority.LIVE,
            customer_id=message.customer_id)
        return EditOutcome.SENT

    async def _refused(self, event: DeliveryChanged) -> None:
        """The channel refused an edit: the customer still has the earlier version, so the
        timeline says so and the manager is told (in the unit of work that records it)."""
        if event.status is not DeliveryStatus.FAILED or event.message_id is not None \
                or event.outbox_id is None:
            return
        row = await Outbox.get_or_none(id=event.outbox_id)
        options = row.payload.get("options") if row is not None else None
        if not isinstance(options, dict) or not options.get("edit_of"):
            return
        message = await Message.filter(id=options.get("edited_message_id")) \
            .select_for_update().first()
        if message is None:
            return
        reason = event.error or "?"
        before = message.meta.get("edits")
        edits: list[object] = list(before) if isinstance(before, list) else []
        number = options.get("edit_number")
        entry = edits[number - 1] if isinstance(number, int) and 0 < number <= len(edits) \
            else None
        if isinstance(entry, dict) and isinstance(number, int):
            edits[number - 1] = {**entry, "not_delivered": reason}
            message.meta = {**message.meta, "edits": edits}
            await message.save(update_fields=["meta"])
        editor = options.get("edited_by")
        await self.bus.emit(TeamNotice.of(
            "edit_not_delivered", Phrase("edit_not_delivered", channel=event.channel.value,
                                         reason=reason),
            key=f"edit-refused:{event.outbox_id}", customer_id=message.customer_id,
            manager_id=editor if isinstance(editor, int) else None))
