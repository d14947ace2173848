"""One customer dialogue on every channel, end to end: the same conversation by Telegram (the
Bot API double), SMS (a real Kannel, the test playing the network), email (Dovecot and an SMTP
server) and the web chat (a visitor over HTTP, replies on its event stream): HELP, STOP, START,
a language switch and "talk to a person". Each answer arrives on the channel that asked; each
consent change appears once in the audit."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from crm.app import App, _telegram, _webchat
from crm.i18n import t
from crm.models import AuditLog, Conversation, Customer, Identity
from crm.types import Channel, ConsentKind, ConversationStatus
from tests.channels.email.conftest import email_settings, mail
from tests.channels.email.conftest import running as email_running
from tests.channels.sms.conftest import OUR_NUMBER, kannel_settings
from tests.conftest import make_settings
from tests.support import procs
from tests.support.consent import takes_marketing
from tests.support.dovecot import Dovecot
from tests.support.kannel import FakeSmsc, KannelServer, SmscMessage
from tests.support.smtp import SmtpServer
from tests.support.telegram_double import TelegramDouble, telegram_settings, user
from tests.support.webchat_visitor import Visitor

COMPANY = "Acme"
_ids = itertools.count(1)


class Speaker:
    """A customer on one channel: says something, and reads what came back on that channel."""

    channel: Channel
    address: str

    async def says(self, text: str, subject: str = "") -> None:
        raise NotImplementedError

    async def answers(self, count: int) -> list[str]:
        """The first `count` answers this customer got, oldest first."""
        raise NotImplementedError


@dataclass
class OnTelegram(Speaker):
    tg: TelegramDouble
    user_id: int

    channel = Channel.TELEGRAM

    @property
    def address(self) -> str:  # type: ignore[override]
        return str(self.user_id)

    async def says(self, text: str, subject: str = "") -> None:
        self.tg.customer_says(user(self.user_id, "Dana"), text)

    async def answers(self, count: int) -> list[str]:
        return [s.text for s in await self.tg.wait_sent(self.user_id, count)][:count]


@dataclass
class OnSms(Speaker):
    smsc: FakeSmsc
    number: str

    channel = Channel.SMS

    @property
    def address(self) -> str:  # type: ignore[override]
        return self.number

    async def says(self, text: str, subject: str = "") -> None:
        await self.smsc.deliver(self.number, OUR_NUMBER, text)

    async def answers(self, count: int) -> list[str]:
        return [_sms_text(m) for m in await self.smsc.wait(self.number, count)]


@dataclass
class OnEmail(Speaker):
    dovecot: Dovecot
    mailbox: str
    smtp: SmtpServer
    mail_address: str

    channel = Channel.EMAIL

    @property
    def address(self) -> str:  # type: ignore[override]
        return self.mail_address

    async def says(self, text: str, subject: str = "") -> None:
        await self.dovecot.append(self.mailbox, mail(
            f"Dana <{self.mail_address}>", subject, text,
            message_id=f"d{next(_ids)}-{self.mail_address}"))

    async def answers(self, count: int) -> list[str]:
        received = await self.smtp.wait_for(self.mail_address, count)
        return [r.mail.get_body(("plain",)).get_content().strip()  # type: ignore[union-attr]
                for r in received[:count]]


@dataclass
class OnWebchat(Speaker):
    visitor: Visitor

    channel = Channel.WEBCHAT

    @property
    def address(self) -> str:  # type: ignore[override]
        return self.visitor.visitor_id

    async def says(self, text: str, subject: str = "") -> None:
        if text.startswith("button:"):  # a press of one of the buttons the chat shows
            await self.visitor.presses(text.removeprefix("button:"))
        else:
            await self.visitor.says(text)

    async def answers(self, count: int) -> list[str]:
        return [m["text"] for m in await self.visitor.replies(count)]


def _sms_text(message: SmscMessage) -> str:
    payload = message.payload
    ucs2 = message.kind == "ucs-2" or (message.kind == "udh" and len(payload) % 2 == 0 and all(
        b < 0x05 for b in payload[::2]))
    return message.decode(ucs2=ucs2)


# What each channel's customer says for each intent: (text, subject).
WORDS: dict[Channel, dict[str, tuple[str, str]]] = {
    Channel.TELEGRAM: {"help": ("/help", ""), "stop": ("/stop", ""), "start": ("/start", ""),
                       "language": ("/language ru", ""), "talk": ("/talk", "")},
    Channel.SMS: {"help": ("HELP", ""), "stop": ("Stop.", ""), "start": ("start", ""),
                  "language": ("LANG RU", ""), "talk": ("оператор", "")},
    Channel.EMAIL: {"help": ("", "help"), "stop": ("", "Unsubscribe"),
                    "start": ("subscribe", "Re: Your request"),
                    "language": ("LANG RU", "Re: Your request"), "talk": ("", "agent")},
    Channel.WEBCHAT: {"help": ("Help", ""), "stop": ("button:stop", ""),
                      "start": ("button:start", ""), "language": ("button:language:ru", ""),
                      "talk": ("button:talk", "")},
}


@pytest_asyncio.fixture(params=[Channel.TELEGRAM, Channel.SMS, Channel.EMAIL, Channel.WEBCHAT],
                        ids=lambda c: c.value)
async def customer(request: pytest.FixtureRequest, db: str, tmp_path: Path, tg: TelegramDouble,
                   kannel: KannelServer, smsc: FakeSmsc, dovecot: Dovecot,
                   smtp: SmtpServer) -> AsyncIterator[Speaker]:
    """The whole service on one channel, and a new customer on it (the servers are the run's,
    started once)."""
    channel: Channel = request.param
    bot = {"company_name": COMPANY, "acknowledge": ["telegram", "email", "sms"]}
    async with AsyncExitStack() as stack:
        if channel is Channel.TELEGRAM:
            settings = make_settings(db, telegram=telegram_settings(tg), bot=bot)
            await stack.enter_async_context(App(settings, extra_channels=[_telegram],
                                                builtin_channels=False,
                                                manage_database=False))
            yield OnTelegram(tg, 9000 + next(_ids))
        elif channel is Channel.SMS:
            base = kannel_settings(db, kannel)
            settings = base.model_copy(update={"bot": base.bot.model_copy(update=bot)})
            await stack.enter_async_context(App(settings, manage_database=False))
            yield OnSms(smsc, f"+1202555{next(_ids) + 9000:04d}")
        elif channel is Channel.WEBCHAT:
            port = procs.free_port()
            settings = make_settings(db, bot=bot, webchat={"enabled": True},
                                     http={"port": port,
                                           "public_url": f"http://127.0.0.1:{port}"})
            await stack.enter_async_context(App(settings, extra_channels=[_webchat],
                                                builtin_channels=False,
                                                manage_database=False))
            http = await stack.enter_async_context(aiohttp.ClientSession())
            visitor = await Visitor(http, f"http://127.0.0.1:{port}").start()
            stack.push_async_callback(visitor.close)
            await visitor.listen()
            yield OnWebchat(visitor)
        else:
            box = dovecot.add_user()
            # Five keywords within a minute: more automatic answers than the mail-loop guard
            # lets through by default (auto_reply_cap_per_hour = 3).
            base = email_settings(db, dovecot, smtp, box, tmp_path, acknowledge=("email",),
                                  auto_reply_cap_per_hour=10)
            settings = base.model_copy(update={"bot": base.bot.model_copy(update=bot)})
            svc = await stack.enter_async_context(email_running(settings))
            await svc.idle()
            yield OnEmail(dovecot, box, smtp, f"dana{next(_ids)}@customer.org")


async def _customer_of(address: str, channel: Channel) -> Customer:
    identity = await Identity.get(channel=channel, address=address)
    return await Customer.get(id=identity.customer_id)


def _expected(key: str, channel: Channel, language: str) -> str:
    for candidate in (f"{key}_{channel.value}", key):
        try:
            return t(candidate, language, company=COMPANY)
        except KeyError:
            continue
    raise KeyError(key)


async def test_one_dialogue_on_every_channel(customer: Speaker) -> None:
    channel = customer.channel
    said = 0

    async def ask(intent: str, answers: int = 1) -> list[str]:
        nonlocal said
        text, subject = WORDS[channel][intent]
        await customer.says(text, subject)
        said += answers
        return (await customer.answers(said))[-answers:]

    [help_answer] = await ask("help")
    assert help_answer.startswith(_expected("help", channel, "en"))
    # The menu comes with it: buttons in Telegram and the web chat, numbered lines by SMS and
    # email.
    if channel in (Channel.SMS, Channel.EMAIL):
        assert "1 - Talk to a manager" in help_answer or "1. Talk to a manager" in help_answer

    [stopped] = await ask("stop")
    assert stopped.startswith(_expected("opted_out", channel, "en"))
    person = await _customer_of(customer.address, channel)
    assert not await takes_marketing(person.id, channel)
    other = Channel.EMAIL if channel is not Channel.EMAIL else Channel.SMS
    assert await takes_marketing(person.id, other)  # a STOP stops the channel it was said on

    started = await ask("start", answers=2 if channel is Channel.TELEGRAM else 1)
    assert started[0] == _expected("opted_in", channel, "en")
    assert await takes_marketing(person.id, channel)

    [switched] = await ask("language")
    assert switched == t("language_set", "ru")
    assert (await Customer.get(id=person.id)).language == "ru"

    [talk] = await ask("talk")
    assert talk == t("talk_prompt", "ru")
    # Asking for a person opens a conversation for the team (routed like any message).
    conversation = await Conversation.filter(customer_id=person.id).order_by("-id").first()
    assert conversation is not None and conversation.status is ConversationStatus.OPEN

    # Each consent change is audited once, with where it came from; nothing else was.
    audit = await AuditLog.filter(customer_id=person.id, action="consent.changed").order_by("id")
    kinds = 2 if channel is Channel.SMS else 1  # SMS STOP stops order updates by SMS too
    assert len(audit) == 2 * kinds
    assert {a.detail["channel"] for a in audit} == {channel.value}
    assert [a.detail["granted"] for a in audit] == [False] * kinds + [True] * kinds
    assert {a.detail["kind"] for a in audit} == (
        {ConsentKind.MARKETING.value, ConsentKind.NOTIFICATIONS.value}
        if channel is Channel.SMS else {ConsentKind.MARKETING.value})
    assert {a.detail["source"] for a in audit} == (
        {"command"} if channel is Channel.TELEGRAM else
        {"button"} if channel is Channel.WEBCHAT else {"keyword"})
    # Nothing went out on another channel.
    assert await Identity.filter(customer_id=person.id).count() == 1


async def test_mail_to_the_list_unsubscribe_address_stops_email_marketing(
        db: str, tmp_path: Path, dovecot: Dovecot, smtp: SmtpServer) -> None:
    box = dovecot.add_user()
    address = f"list{next(_ids)}@customer.org"
    settings = email_settings(db, dovecot, smtp, box, tmp_path)
    assert settings.email.unsubscribe_mailbox == "support+unsubscribe@example.com"
    async with email_running(settings) as svc:
        await svc.idle()
        # What a mail client sends for `List-Unsubscribe: <mailto:…?subject=unsubscribe>`.
        raw = mail(address, "unsubscribe", "This message was sent to unsubscribe you.",
                   message_id=f"u{next(_ids)}@customer.org").replace(
            b"To: support@example.com", b"To: support+unsubscribe@example.com")
        await dovecot.append(box, raw)
        [confirmation] = await smtp.wait_for(address)
    assert confirmation.mail["Subject"] == "Re: unsubscribe"
    person = await _customer_of(address, Channel.EMAIL)
    assert not await takes_marketing(person.id, Channel.EMAIL)
    [audit] = await AuditLog.filter(customer_id=person.id, action="consent.changed")
    assert audit.detail == {"kind": "marketing", "channel": "email", "granted": False,
                            "source": "email"}
    # A machine's request, not a question: nothing for the managers.
    assert await Conversation.filter(customer_id=person.id).count() == 0
