"""Fixtures shared by the whole suite.

The suite runs once per database: `CRM_TEST_DB=sqlite` (default) or `CRM_TEST_DB=postgres`, in
separate pytest processes (Tortoise cannot hold both dialects in one process). PostgreSQL is a real
server the suite starts itself (tests/support/postgres.py).
"""

from __future__ import annotations

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


async def truncate() -> None:
    conn = get_connection("default")
    tables = [m._meta.db_table for app in Tortoise.apps.values() for m in app.values()]
    if DB_KIND == "postgres":
        await conn.execute_script(
            f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
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
