"""Migrate a fresh database to `before`, put rows in with plain SQL, migrate to the head.

`python -m tests.support.migrate_with_data URL BEFORE SQL_FILE`: runs in a child process
(Tortoise holds one database per process) and prints, as JSON, every row of the tables named on
the command's standard input after the upgrade ("head"), after a downgrade back to `before`
("down"), and after upgrading once more ("again").
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tortoise import Tortoise
from tortoise.connection import get_connection
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget

from crm import db


async def main(url: str, before: str, rows: str, tables: list[str]) -> None:
    config = db.tortoise_config(url)
    apps = config["apps"]
    await Tortoise.init(config=config, _enable_global_fallback=True)
    try:
        conn = get_connection("default")
        await MigrationExecutor(conn, apps).migrate(targets=[MigrationTarget("models", before)])
        for statement in rows.split(";\n"):
            if statement.strip():
                await conn.execute_query(statement)
        out = {}
        for step, target in (("head", None), ("down", before), ("again", None)):
            await MigrationExecutor(conn, apps).migrate(
                targets=[MigrationTarget("models", target)] if target else None)
            out[step] = {t: await _rows(conn, t) for t in tables}
        print(json.dumps(out, default=str))
    finally:
        await Tortoise.close_connections()


async def _rows(conn: object, table: str) -> list[dict[str, object]] | None:
    try:
        return list(await conn.execute_query_dict(  # type: ignore[attr-defined]
            f"SELECT * FROM {table} ORDER BY id"))
    except Exception:
        return None  # not there at this step (a table a downgrade removed)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]).read_text(),
                     sys.stdin.read().split()))
