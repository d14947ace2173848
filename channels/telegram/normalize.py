"""From a Telegram update to the core's types: pure functions, no I/O.

`to_incoming` is the adapter's edge: an update becomes what a customer said (an
InboundMessage, or a button press as its `action`) and/or what a member of the team said (a
StaffMessage). Past it, no code sees a python-telegram-bot type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from telegram import Message, Update

from crm.types import Attachment, Channel, InboundMessage, StaffMessage

ChatKind = Literal["private", "team", "other"]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One update as crm types. In a private chat both views are given: whether the writer is
    a manager or a customer is the bot's decision (it knows the team), not the adapter's."""

    chat: ChatKind
    user_id: int | None
    customer: InboundMessage | None = None
    staff: StaffMessage | None = None


def external_id(chat_id: int, message_id: int) -> str:
    return f"{chat_id}:{message_id}"


def command_of(text: str | None, bot_username: str | None = None) -> tuple[str, str] | None:
    """`/start@bot payload` -> ("start", "payload"); None when the text is no command, or a
    command addressed to another bot."""
    if not text or not text.startswith("/") or len(text) < 2:
        return None
    head, _, rest = text.partition(" ")
    name, _, target = head[1:].partition("@")
    if target and bot_username and target.lower() != bot_username.lower():
        return None
    if not name or not all(c.isalnum() or c == "_" for c in name):
        return None
    return name.lower(), rest.strip()


def attachments_of(message: Message) -> tuple[Attachment, ...]:
    """What came with the message, keeping Telegram's file id and metadata."""
    out: list[Attachment] = []
    if message.photo:
        big = message.photo[-1]
        out.append(Attachment("photo", file_id=big.file_id, size=big.file_size,
                              meta={"width": big.width, "height": big.height,
                                    "file_unique_id": big.file_unique_id}))
    for kind in ("document", "voice", "video", "audio", "video_note", "animation"):
        media = getattr(message, kind, None)
        if media is None or (kind == "document" and message.animation is not None):
            continue
        meta: dict[str, Any] = {"file_unique_id": media.file_unique_id}
        if getattr(media, "duration", None) is not None:
            meta["duration"] = _seconds(media.duration)
        out.append(Attachment(kind, file_id=media.file_id,
                              filename=getattr(media, "file_name", None),
                              mime_type=getattr(media, "mime_type", None),
                              size=media.file_size, meta=meta))
    if message.sticker is not None:
        s = message.sticker
        out.append(Attachment("sticker", file_id=s.file_id,
                              meta={"emoji": s.emoji, "set_name": s.set_name,
                                    "file_unique_id": s.file_unique_id}))
    if message.location is not None:
        loc = message.location
        out.append(Attachment("location", meta={"latitude": loc.latitude,
                                                "longitude": loc.longitude}))
    if message.contact is not None:
        c = message.contact
        out.append(Attachment("contact", meta={
            "phone_number": c.phone_number, "first_name": c.first_name,
            "last_name": c.last_name, "user_id": c.user_id}))
    return tuple(out)


def to_incoming(update: Update, bot_username: str | None = None,
                team_chat_id: int | None = None) -> Incoming | None:
    """The update as crm types; None for what nobody said (service messages, other bots)."""
    if update.callback_query is not None:
        return Incoming("private", update.callback_query.from_user.id,
                        customer=to_inbound(update, bot_username))
    chat = update.effective_chat
    if chat is None:
        return None
    user = update.effective_user
    edited = update.edited_message is not None
    written = update.edited_message if edited else update.message
    if team_chat_id is not None and chat.id == team_chat_id:
        return Incoming("team", user.id if user else None,
                        staff=to_staff(written, bot_username, team=True, edited=edited))
    if chat.type != "private":
        return Incoming("other", user.id if user else None)
    return Incoming("private", user.id if user else None,
                    customer=to_inbound(update, bot_username),
                    staff=to_staff(written, bot_username, team=False, edited=edited))


def to_staff(message: Message | None, bot_username: str | None, *,
             team: bool, edited: bool = False) -> StaffMessage | None:
    """What a team member wrote, or how they edited what they wrote (`edited`)."""
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    parsed = command_of(message.text, bot_username)
    reply = message.reply_to_message
    return StaffMessage(
        channel=Channel.TELEGRAM, user_id=message.from_user.id, chat_id=message.chat.id,
        message_id=message.message_id, text=message.text or message.caption or "",
        thread_id=message.message_thread_id if message.is_topic_message else None,
        in_team_chat=team, command=parsed[0] if parsed else None,
        args=parsed[1] if parsed else "",
        reply_to_text=(reply.text or reply.caption) if reply is not None else None,
        attachments=attachments_of(message), edited=edited,
        language=message.from_user.language_code)


def to_inbound(update: Update, bot_username: str | None = None) -> InboundMessage | None:
    """A customer's update as an InboundMessage; None for what is not a customer's message.

    A command (`/start payload`) comes with `command` set to its name, a button press with
    `action` set to the button's data, a shared contact with `command` "contact"; the dialogue
    (bot/customer.py) decides what each means.
    """
    if update.callback_query is not None:
        query = update.callback_query
        data = query.data or ""
        return InboundMessage(
            channel=Channel.TELEGRAM, external_id=f"cb:{query.id}", sender=str(query.from_user.id),
            text=data, sender_name=query.from_user.full_name,
            language=query.from_user.language_code, action=data,
            headers={"update_id": update.update_id,
                     **({"first_name": query.from_user.first_name}
                        if query.from_user.first_name else {})})
    edited = update.edited_message is not None
    message = update.edited_message if edited else update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    sender = message.from_user
    text = message.text or message.caption or ""
    attachments = attachments_of(message)
    if not text and not attachments:
        return None  # service messages (joins, pins): nothing a person said
    command: str | None = None
    parsed = command_of(message.text, bot_username)
    if parsed is not None:
        command = parsed[0]
    elif message.contact is not None:
        command = "contact"
    ext = external_id(message.chat.id, message.message_id)
    edit_of = None
    if edited:
        edit_of = ext
        stamp = int(message.edit_date.timestamp()) if message.edit_date else update.update_id
        ext = f"{ext}:edit:{stamp}"
    reply_to = None
    if message.reply_to_message is not None:
        reply_to = external_id(message.chat.id, message.reply_to_message.message_id)
    return InboundMessage(
        channel=Channel.TELEGRAM, external_id=ext, sender=str(sender.id), text=text,
        sender_name=sender.full_name, attachments=attachments, reply_to=reply_to,
        sent_at=message.date, language=sender.language_code, edit_of=edit_of, command=command,
        headers={"update_id": update.update_id,
                 **({"username": sender.username} if sender.username else {}),
                 **({"first_name": sender.first_name} if sender.first_name else {})})


def _seconds(value: Any) -> float:
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)
