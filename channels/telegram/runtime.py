"""The running Telegram channel: python-telegram-bot in the service's loop, polling or webhook.

Each update is handled inside one unit of work together with the new update offset (the Cursor
table), so the offset moves past an update only when what the update caused is committed: a
restart with pending updates loses none and stores none twice. Webhook calls are answered 200
only after that commit; a wrong or missing secret gets 403 and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from telegram import Bot, ReactionTypeEmoji, Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder
from tortoise.exceptions import DBConnectionError, OperationalError

from channels.telegram.files import TelegramFiles
from channels.telegram.normalize import Incoming, to_incoming
from channels.telegram.sender import TelegramSender, retry_after_seconds
from channels.telegram.topics import Topics
from channels.telegram.transport import AiohttpRequest
from crm.config import TelegramSettings
from crm.models import Cursor
from crm.ports import ChannelHealth
from crm.services import Core
from crm.types import Channel

log = structlog.get_logger(__name__)

UpdateHandler = Callable[[Incoming], Awaitable[None]]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
MAX_HANDLER_ATTEMPTS = 3


def build_application(settings: TelegramSettings) -> Application:  # type: ignore[type-arg]
    root = settings.api_base_url.rstrip("/")
    # aiohttp, not PTB's default httpx: see channels/telegram/transport.py. 64 connections
    # carry a paid broadcast's thousand messages a second at the Bot API's usual latency.
    return (ApplicationBuilder().token(settings.token)
            .base_url(f"{root}/bot").base_file_url(f"{root}/file/bot")
            .request(AiohttpRequest(64, pool_timeout=10.0))
            .get_updates_request(AiohttpRequest(1, read_timeout=settings.poll_timeout + 10.0))
            .updater(None).build())


class TelegramRuntime:
    channel = Channel.TELEGRAM

    def __init__(self, core: Core, settings: TelegramSettings,
                 webhook_path: str = "/telegram/webhook") -> None:
        self.core = core
        self.settings = settings
        self.application = build_application(settings)
        self.bot: Bot = self.application.bot
        self.topics = Topics(self.bot, settings.managers_chat_id,
                             core.settings.team_language) \
            if settings.managers_chat_id is not None else None
        self._sender = TelegramSender(
            self.bot, self.topics,
            paid_rate=settings.paid_broadcast_rate if settings.paid_broadcast else None)
        self.files = TelegramFiles(self.bot, core.files)
        self.webhook_path = webhook_path
        self.handlers: list[UpdateHandler] = []
        self._state: tuple[str, str] = ("starting", "")
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._busy = asyncio.Lock()  # one update at a time keeps each chat's order
        self._background: set[asyncio.Task[Any]] = set()
        self.cursor_name = f"telegram.offset:{settings.token.split(':')[0]}"

    @property
    def sender(self) -> TelegramSender:
        return self._sender

    @property
    def username(self) -> str | None:
        return self.bot.username if self.bot._bot_user is not None else None

    def add_handler(self, handler: UpdateHandler) -> None:
        """Called for each update (as crm types), in order, inside the unit of work that stores
        the offset."""
        self.handlers.append(handler)

    def mount(self, web_app: web.Application) -> None:
        web_app.router.add_post(self.webhook_path, self._webhook)

    def health(self) -> ChannelHealth:
        return ChannelHealth(*self._state)  # type: ignore[arg-type]

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        try:
            await self.application.initialize()  # getMe: checks the token, learns the username
        except InvalidToken as e:
            self._state = ("down", f"the token was refused: {e.message}")
            raise
        if self.settings.mode == "webhook":
            public = self.core.settings.http.public_url.rstrip("/")
            await self.bot.set_webhook(url=f"{public}{self.webhook_path}",
                                       secret_token=self.settings.webhook_secret,
                                       allowed_updates=ALLOWED_UPDATES)
            self._state = ("up", "webhook")
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            self._task = asyncio.create_task(self._poll(), name="telegram-poll")
            self._state = ("up", "polling")
        log.info("telegram.started", mode=self.settings.mode, bot=self.username)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            # Waiting in getUpdates is safe to cancel; an update being handled finishes first.
            async with self._busy:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._background:  # reactions and the like: best effort, all within 2 s together
            await asyncio.wait(list(self._background), timeout=2)
        await self.application.shutdown()
        self._state = ("down", "stopped")

    # --- receiving -------------------------------------------------------------------------

    async def _offset(self) -> int:
        row = await Cursor.filter(name=self.cursor_name).first()
        return int(row.value.get("offset", 0)) if row else 0  # type: ignore[call-overload]

    async def _poll(self) -> None:
        delay = 1.0
        while True:
            try:
                offset = await self._offset()
                break
            except Exception as e:  # the database is not there yet: nothing to do but wait
                self._state = ("down", f"cannot read the update offset: {e}")
                log.warning("telegram.offset_unavailable", error=str(e), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
        delay = 1.0
        while not self._stopping:
            try:
                updates = await self.bot.get_updates(
                    offset=offset or None, timeout=self.settings.poll_timeout,
                    allowed_updates=ALLOWED_UPDATES)
                delay = 1.0
                self._state = ("up", "polling")
            except RetryAfter as e:
                await asyncio.sleep(retry_after_seconds(e))
                continue
            except Conflict as e:
                self._state = ("down", f"another client polls this bot: {e.message}")
                log.warning("telegram.poll_conflict", error=e.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            except (NetworkError, TelegramError) as e:
                self._state = ("down", f"getUpdates failed: {e}")
                log.warning("telegram.poll_failed", error=str(e), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            for update in updates:
                if self._stopping:
                    return
                async with self._busy:
                    await self.process(update)
                offset = update.update_id + 1

    async def process(self, update: Update) -> None:
        """Handle one update and store the offset past it, in one transaction; retry on error.

        A database outage is retried until it passes; an update that fails for another reason
        three times is logged in full and skipped, so one bad update cannot stop the bot.
        """
        try:
            incoming = to_incoming(update, self.username, self.settings.managers_chat_id)
        except Exception:  # a shape of update we did not foresee: skip it, keep polling
            log.exception("telegram.update_unreadable", update_id=update.update_id)
            await self._skip(update)
            return
        if incoming is not None and incoming.chat == "other":
            log.info("telegram.ignored_chat", update_id=update.update_id)
            incoming = None
        if incoming is not None:  # before the unit of work: no lock held while downloading
            incoming = await self.files.fetch(incoming)
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self.core.bus.unit_of_work():
                    if incoming is not None:
                        for handler in self.handlers:
                            await handler(incoming)
                    await self._store_offset(update.update_id + 1)
                break
            except (DBConnectionError, OperationalError, ConnectionError) as e:
                if not _transient(e) and attempt >= MAX_HANDLER_ATTEMPTS:
                    # Tortoise files IntegrityError, DoesNotExist and PostgreSQL's refusals of
                    # bad data under OperationalError: those never pass by waiting.
                    await self._skip(update)
                    break
                log.warning("telegram.update_db_error", update_id=update.update_id, error=str(e))
                if self._stopping:
                    raise
                await asyncio.sleep(min(0.2 * 2 ** attempt, 10))
            except Exception:
                log.exception("telegram.update_failed", update_id=update.update_id,
                              attempt=attempt)
                if attempt >= MAX_HANDLER_ATTEMPTS:
                    await self._skip(update)
                    break
                await asyncio.sleep(0.1 * attempt)
        if update.callback_query is not None:  # stop the button's spinner
            self.spawn(update.callback_query.answer())

    async def _skip(self, update: Update) -> None:
        log.error("telegram.update_skipped", update_id=update.update_id,
                  update=json.dumps(update.to_dict(), default=str)[:4000])
        try:
            await self._store_offset(update.update_id + 1)
        except Exception as e:  # the offset moves on in memory; a restart replays it once more
            log.warning("telegram.offset_not_stored", update_id=update.update_id, error=str(e))

    async def _store_offset(self, offset: int) -> None:
        updated = await Cursor.filter(name=self.cursor_name).update(value={"offset": offset})
        if not updated:
            await Cursor.create(name=self.cursor_name, value={"offset": offset})

    async def _webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.settings.webhook_secret.encode()):
            log.warning("telegram.webhook_forbidden", remote=request.remote)
            return web.Response(status=403, text="forbidden\n")
        try:
            data = await request.json()
            update = Update.de_json(data, self.bot)
        except (ValueError, KeyError, TypeError) as e:
            return web.Response(status=400, text=f"not a Telegram update: {e}\n")
        if update is None:
            return web.Response(status=400, text="not a Telegram update\n")
        async with self._busy:
            await self.process(update)
        return web.Response(text="ok")

    # --- small calls that are not messages -------------------------------------------------

    def spawn(self, call: Awaitable[Any]) -> None:
        """Run a best-effort Bot API call (a reaction, a callback answer) in the background."""
        async def run() -> None:
            try:
                await call
            except TelegramError as e:
                log.info("telegram.call_failed", error=str(e))

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def react(self, chat_id: int, message_id: int, emoji: str) -> None:
        self.spawn(self.bot.set_message_reaction(chat_id, message_id,
                                                 [ReactionTypeEmoji(emoji)]))


def _transient(error: Exception) -> bool:
    """A database error that waiting can cure (connection lost, database locked)."""
    if isinstance(error, DBConnectionError | ConnectionError):
        return True
    text = str(error).lower()
    return any(word in text for word in ("locked", "connection", "closed", "timeout",
                                         "terminat", "shutting down"))
