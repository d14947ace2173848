"""Fixtures shared by the whole suite.

The suite runs once per database: `CRM_TEST_DB=sqlite` (default) or `CRM_TEST_DB=postgres`, in
separate pytest processes (Tortoise cannot hold both dialects in one process). PostgreSQL is a real
server the suite starts itself (tests/support/postgres.py).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from tortoise import Tortoise
from tortoise.connection import get_connection

from crm import db as crm_db
from crm.config import Settings, parse_settings
from crm.services import Core
from tests.support.postgres import PostgresServer, start_postgres

DB_KIND = os.environ.get("CRM_TEST_DB", "sqlite")
if DB_KIND not in ("sqlite", "postgres"):
    raise RuntimeError(f"CRM_TEST_DB must be sqlite or postgres, not {DB_KIND!r}")


def pytest_report_header() -> str:
    return f"database: {DB_KIND}"


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="crm-tests-") as d:
        os.chmod(d, 0o755)
        yield Path(d)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def new_db_url(request: pytest.FixtureRequest, tmp_root: Path) -> Any:
    """A factory of fresh, empty databases of the kind under test (for subprocess tests)."""
    counter = iter(range(1_000_000))

    def make() -> str:
        if DB_KIND == "postgres":
            server: PostgresServer = request.getfixturevalue("pg_server")
            return server.url(server.create_database())
        return f"sqlite://{tmp_root}/db-{next(counter)}.sqlite3"

    return make


@pytest_asyncio.fixture(scope="session")
async def database(new_db_url: Any) -> AsyncIterator[str]:
    """The session's database, migrated with the real migrations."""
    url = new_db_url()
    await crm_db.init(url)
    await crm_db.upgrade()
    yield url
    await crm_db.close()


@pytest_asyncio.fixture
async def db(database: str) -> AsyncIterator[str]:
    """An empty database for one test."""
    yield database
    await truncate()


LEAKS: list[str] = []  # connections a test left holding locks (see truncate)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LEAKS:
        terminalreporter.section("locks left held after a test (ended by the next truncate)")
        for line in LEAKS:
            terminalreporter.write_line(line)


async def truncate() -> None:
    conn = get_connection("default")
    tables = [m._meta.db_table for app in Tortoise.apps.values() for m in app.values()]
    if DB_KIND == "postgres":
        # TRUNCATE waits for every lock on the tables. A connection some test left inside a
        # transaction would hold it forever: wait a while, then say who holds what and end
        # them, so one leak is reported where it happened instead of hanging the whole run.
        truncate_all = (f"BEGIN; SET LOCAL lock_timeout = '15s'; TRUNCATE {', '.join(tables)} "
                        "RESTART IDENTITY CASCADE; COMMIT;")
        try:
            await conn.execute_script(truncate_all)
        except Exception as e:
            if "lock timeout" not in str(e):
                raise
            holders = await conn.execute_query_dict(
                "SELECT pid, state, backend_xid, xact_start, wait_event, left(query, 300) AS q "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'")
            tasks = [f"{t.get_name()}: {t.get_coro()!r}" for t in asyncio.all_tasks()]
            # Listed at the end of the run (pytest_terminal_summary): the run goes on.
            LEAKS.append(f"{os.environ.get('PYTEST_CURRENT_TEST', '?')}: TRUNCATE waited 15 s; "
                         f"holders: {holders}; tasks of this loop: {tasks}")
            await conn.execute_query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                "current_database() AND pid <> pg_backend_pid() AND state <> 'idle'")
            await conn.execute_script(truncate_all)
    else:
        # Without the foreign-key checks: every row goes anyway, and checking each deleted
        # customer against unindexed references (merged_into_id) is quadratic.
        await conn.execute_script(
            "PRAGMA foreign_keys = OFF;" + "".join(f"DELETE FROM {t};" for t in tables)
            + "DELETE FROM sqlite_sequence;PRAGMA foreign_keys = ON;")


# Files the services under test keep (crm/files.py): never in the working tree.
FILES_DIR = tempfile.mkdtemp(prefix="crm-test-files-")
LINK_SECRET = "test-link-secret-0123456789abcdef"


def make_settings(database_url: str, **sections: dict[str, Any]) -> Settings:
    raw: dict[str, Any] = {"database": {"url": database_url},
                           "http": {"host": "127.0.0.1", "port": 0,
                                    "link_secret": LINK_SECRET},
                           "files": {"dir": FILES_DIR},
                           "outbox": {"poll_interval": 0.2, "backoff_base": 0.05,
                                      "backoff_max": 1.0}}
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return parse_settings(raw)


@pytest.fixture
def settings(db: str) -> Settings:
    return make_settings(db)


@pytest.fixture
def core(settings: Settings) -> Core:
    return Core.build(settings)


@pytest.fixture
def talking_core(settings: Settings) -> Core:
    """A core whose inbox is the customer dialogue, as the composition root builds it."""
    from bot import Dialogue

    core = Core.build(settings)
    core.inbox = Dialogue(core)
    return core
