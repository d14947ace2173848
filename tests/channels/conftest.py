"""The real servers the channel tests share, one of each for the whole run: Kannel (with the
test as its SMSC), Dovecot, an SMTP server, and the Telegram Bot API double. Each starts only
when a test first needs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.channels.email.certs import TlsFiles, make_tls_files
from tests.support import procs
from tests.support.dovecot import Dovecot, start_dovecot
from tests.support.kannel import INBOUND_TOKEN, FakeSmsc, KannelServer, start_kannel
from tests.support.smtp import TEST_LOGIN, SmtpServer, start_smtp
from tests.support.telegram_fixtures import service, telegram_server, tg

__all__ = ["crm_port", "dovecot", "kannel", "post_smsc", "service", "smsc", "smtp",
           "telegram_server", "tg", "tls_files"]


@pytest.fixture(scope="session")
def crm_port() -> int:
    """The service's HTTP port: Kannel's get-url points at it, so it is fixed for the session."""
    return procs.free_port()


@pytest.fixture(scope="session")
def kannel(crm_port: int) -> Iterator[KannelServer]:
    server = start_kannel(crm_port, INBOUND_TOKEN)
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="session")
async def smsc(kannel: KannelServer) -> AsyncIterator[FakeSmsc]:
    network = FakeSmsc()
    await network.connect(kannel.smsc_port)
    yield network
    await network.close()


@pytest_asyncio.fixture(scope="session")
async def post_smsc(kannel: KannelServer) -> AsyncIterator[FakeSmsc]:
    """The line whose inbound SMS Kannel forwards by post-url (see tests/support/kannel.py)."""
    network = FakeSmsc()
    await network.connect(kannel.post_smsc_port)
    yield network
    await network.close()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def dovecot(tls_files: TlsFiles) -> Iterator[Dovecot]:
    server = start_dovecot(tls=(tls_files.cert, tls_files.key))
    yield server
    server.cleanup()


@pytest_asyncio.fixture(scope="session")
async def smtp() -> AsyncIterator[SmtpServer]:
    server = start_smtp(credentials=TEST_LOGIN)
    server.bind_loop(asyncio.get_running_loop())
    yield server
    server.stop()
