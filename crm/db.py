"""Database lifecycle: Tortoise init and close, and schema migrations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import get_connection
from tortoise.migrations.executor import MigrationExecutor

from crm import sqlite_reads
from crm.errors import SchemaOutdated

MODELS = ["crm.models"]


def tortoise_config(url: str, pool_size: int = 10,
                    sqlite_synchronous: str = "normal") -> dict[str, Any]:
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://").split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if "synchronous=" not in url:  # Tortoise applies URL parameters as PRAGMAs
            url += ("&" if "?" in url else "?") + f"synchronous={sqlite_synchronous.upper()}"
    connection: str | dict[str, Any] = url
    if url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        if "?" not in url:
            url = f"{url}?maxsize={pool_size}"
        connection = expand_db_url(url)
        # asyncpg sends a reset query (advisory locks, cursors, LISTEN, SET) each time a
        # connection goes back to the pool: a second round trip for every API read. Pooled
        # connections here keep no session state (crm/leader.py holds its lock on its own
        # connection); asyncpg still rolls back a transaction left open.
        connection["credentials"]["reset"] = _keep_session
    return {
        "connections": {"default": connection},
        "apps": {"models": {"models": MODELS, "default_connection": "default",
                            "migrations": "crm.migrations"}},
        "use_tz": True,
        "timezone": "UTC",
    }


async def _keep_session(_connection: object) -> None:
    """A pooled connection is handed on as it is (see tortoise_config)."""


async def init(url: str, pool_size: int = 10, sqlite_synchronous: str = "normal") -> None:
    """Connect the ORM in the calling task (Tortoise 1.x keeps its context in a contextvar)."""
    await Tortoise.init(config=tortoise_config(url, pool_size, sqlite_synchronous),
                        _enable_global_fallback=True)


async def close() -> None:
    sqlite_reads.close_all()
    await Tortoise.close_connections()


def _executor() -> MigrationExecutor:
    apps = {"models": {"models": MODELS, "default_connection": "default",
                       "migrations": "crm.migrations"}}
    return MigrationExecutor(get_connection("default"), apps)


async def pending_migrations() -> list[str]:
    steps = await _executor().plan()
    return [f"{s.migration.app_label}.{s.migration.name}" for s in steps if not s.backward]


async def upgrade(progress: Callable[[str], object] | None = None) -> list[str]:
    """Apply every pending migration; returns their names."""
    pending = await pending_migrations()

    def report(event: str, app: str, name: str) -> None:
        if progress and event == "apply_done":
            progress(f"{app}.{name}")

    await _executor().migrate(progress=report)
    return pending


async def ensure_schema(url: str, auto_upgrade: bool) -> list[str]:
    """On SQLite with auto_upgrade, migrate; otherwise refuse to run on an old schema."""
    pending = await pending_migrations()
    if not pending:
        return []
    if url.startswith("sqlite:") and auto_upgrade:
        return await upgrade()
    raise SchemaOutdated(
        f"the database schema is behind the code ({len(pending)} pending migration(s): "
        f"{', '.join(pending)}); run `crm db upgrade -c <config>` first"
    )


# For developers' `tortoise makemigrations` (see [tool.tortoise] in pyproject.toml): the models and
# the migrations package, on a scratch SQLite file.
MIGRATIONS_CONFIG: dict[str, Any] = {
    "connections": {"default": "sqlite:///tmp/crm-makemigrations.sqlite3"},
    "apps": {"models": {"models": MODELS, "default_connection": "default",
                        "migrations": "crm.migrations"}},
}
