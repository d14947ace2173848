"""The `crm` command: run the service, migrate the database, manage the team and customers."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from crm import db, logs
from crm.config import Settings, load_settings
from crm.errors import ConfigError, CrmError
from crm.types import Direction, Role

T = TypeVar("T")

CONFIG_HELP = "Config file (TOML). Default: $CRM_CONFIG or ./config.toml."


def _config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-c", "--config", "config_path", envvar="CRM_CONFIG",
                        default="config.toml", show_default=True, help=CONFIG_HELP,
                        type=click.Path(dir_okay=False))(f)


def _settings(config_path: str) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigError as e:
        raise click.ClickException(f"invalid config:\n{e}") from None


def _with_db(settings: Settings, work: Callable[[], Awaitable[T]], *,
             check_schema: bool = True) -> T:
    """Run `work` connected to the database (on an up-to-date schema, unless told not to)."""
    async def main() -> T:
        await db.init(settings.database.url, settings.database.pool_size,
                      settings.database.sqlite_synchronous)
        try:
            if check_schema:
                await db.ensure_schema(settings.database.url, settings.database.auto_upgrade)
            return await work()
        finally:
            await db.close()

    return _run(main)


def _run(main: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(main())  # type: ignore[arg-type]
    except CrmError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{type(e).__name__}: {e}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chatcrm", prog_name="crm")
def main() -> None:
    """A self-hosted CRM for teams that sell and support through Telegram, email and SMS.

    Every customer message, from every channel, lands in one timeline per customer; managers
    answer from Telegram. Start with `crm run -c config.toml` (copy config.example.toml).
    """


@main.command()
@_config_option
def run(config_path: str) -> None:
    """Run the service: HTTP server, channels, outbox dispatcher and scheduler.

    Stops cleanly on Ctrl-C or SIGTERM: sends under way finish, the rest stays queued.
    """
    settings = _settings(config_path)
    logs.setup(settings.logging.level, settings.logging.format)
    from crm.app import serve

    _run(lambda: serve(settings))


@main.group(name="db")
def db_group() -> None:
    """Database schema: migrations."""


@db_group.command()
@_config_option
def upgrade(config_path: str) -> None:
    """Apply pending migrations."""
    applied = _with_db(_settings(config_path), lambda: db.upgrade(
        lambda name: click.echo(f"  applied {name}")), check_schema=False)
    click.echo(f"database is up to date ({len(applied)} migration(s) applied)")


@db_group.command()
@_config_option
def status(config_path: str) -> None:
    """Show pending migrations (exit 1 if any)."""
    pending = _with_db(_settings(config_path), db.pending_migrations, check_schema=False)
    if pending:
        click.echo("pending migrations:\n" + "\n".join(f"  {p}" for p in pending))
        sys.exit(1)
    click.echo("database is up to date")


@main.group()
def managers() -> None:
    """The team: who may answer customers from Telegram, and with which role."""


@managers.command("add")
@_config_option
@click.argument("telegram_user_id", type=int)
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.MANAGER.value,
              show_default=True, help="admin: everything; manager: customers; marketer: campaigns")
@click.option("--username", help="Telegram @username, for /assign @name")
@click.option("--capacity", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="open conversations this manager can hold at once")
def managers_add(config_path: str, telegram_user_id: int, name: str, role: str,
                 username: str | None, capacity: int) -> None:
    """Register a manager by Telegram user id."""
    from crm.managers import Managers

    m = _with_db(_settings(config_path), lambda: Managers().add(
        telegram_user_id, name, Role(role), username and username.lstrip("@"), capacity))
    click.echo(f"added manager #{m.id}: {m.name} ({m.role.value}), Telegram {m.telegram_user_id}")


@managers.command("list")
@_config_option
@click.option("--all", "include_removed", is_flag=True, help="include removed managers")
def managers_list(config_path: str, include_removed: bool) -> None:
    """List the managers."""
    from crm.managers import Managers

    rows = _with_db(_settings(config_path), lambda: Managers().list(include_removed))
    if not rows:
        click.echo("no managers yet: add one with `crm managers add TELEGRAM_ID NAME`")
        return
    click.echo(f"{'id':>4}  {'telegram':>12}  {'role':8}  {'status':7}  name")
    for m in rows:
        state = m.availability.value if m.active else "removed"
        user = f" @{m.username}" if m.username else ""
        click.echo(f"{m.id:>4}  {m.telegram_user_id:>12}  {m.role.value:8}  {state:7}  "
                   f"{m.name}{user}")


@managers.command("remove")
@_config_option
@click.argument("telegram_user_id", type=int)
def managers_remove(config_path: str, telegram_user_id: int) -> None:
    """Remove a manager (their history stays)."""
    from crm.managers import Managers

    m = _with_db(_settings(config_path), lambda: Managers().remove(telegram_user_id))
    click.echo(f"removed manager #{m.id}: {m.name}")


@main.group()
def customers() -> None:
    """Customers: find, read a timeline, merge, export or forget."""


def _core(settings: Settings) -> Any:
    from crm.services import Core

    return Core.build(settings)


def _customers(settings: Settings) -> Any:
    return _core(settings).customers


@customers.command("list")
@_config_option
@click.option("-s", "--search", default="", help="part of a name or an address")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def customers_list(config_path: str, search: str, limit: int) -> None:
    """List customers, most recently seen first."""
    from crm.models import Identity

    settings = _settings(config_path)

    async def work() -> tuple[list[tuple[Any, list[Any]]], dict[int, list[str]]]:
        core = _core(settings)
        found = await core.customers.find(search, limit)
        ids = [c.id for c in found]
        idents = await Identity.filter(customer_id__in=ids)
        return ([(c, [i for i in idents if i.customer_id == c.id]) for c in found],
                await core.consent.denied_channels(ids))

    rows, opted_out = _with_db(settings, work)
    if not rows:
        click.echo("no customers found")
        return
    for c, idents in rows:
        seen = _when(c.last_seen_at)
        addresses = ", ".join(f"{i.channel.value}:{i.address}" for i in idents) or "-"
        where = ["every channel" if ch == "*" else ch for ch in opted_out.get(c.id, [])]
        flag = f" [no marketing: {', '.join(where)}]" if where else ""
        click.echo(f"#{c.id:<6} {(c.name or '(no name)')[:30]:30}  {seen:16}  {addresses}{flag}")


@customers.command("show")
@_config_option
@click.argument("customer_id", type=int)
@click.option("-n", "--limit", type=int, default=None, help="only the last N entries")
def customers_show(config_path: str, customer_id: int, limit: int | None) -> None:
    """Print a customer's details and timeline."""
    from crm.models import Conversation, Identity

    settings = _settings(config_path)

    async def work() -> tuple[Any, list[Any], list[Any], Any, list[Any]]:
        core = _core(settings)
        c = await core.customers.get(customer_id)
        return (c, await Identity.filter(customer_id=c.id),
                await core.customers.timeline(c.id, limit),
                await Conversation.filter(customer_id=c.id).order_by("-id").first(),
                await core.consent.states(c.id))

    c, idents, messages, conv, consent = _with_db(settings, work)
    click.echo(f"Customer #{c.id}: {c.name or '(no name)'}")
    if c.erased_at:
        click.echo(f"  personal data erased {_when(c.erased_at)}")
    for i in idents:
        bad = f"  (undeliverable: {i.undeliverable_reason})" if i.undeliverable_reason else ""
        click.echo(f"  {i.channel.value:8} {i.address}{bad}")
    details = [f"language {c.language}" if c.language else "",
               f"tags {', '.join(c.tags)}" if c.tags else "",
               f"lead source {c.lead_source}" if c.lead_source else ""]
    if any(details):
        click.echo("  " + "; ".join(d for d in details if d))
    from crm.consent import describe

    for line in describe(consent):
        click.echo(f"  {line}")
    if conv is not None:
        click.echo(f"  conversation #{conv.id}: {conv.status.value}")
    click.echo("")
    arrows = {Direction.IN: "<-", Direction.OUT: "->", Direction.NOTE: "##",
              Direction.EVENT: "**"}
    for m in messages:
        who = {"customer": "customer", "system": "system"}.get(m.author_kind, m.author_kind)
        status = f" [{m.delivery_status.value}]" if m.direction is Direction.OUT else ""
        text = m.text.replace("\n", "\n" + " " * 22)
        click.echo(f"{_when(m.created_at)} {arrows[m.direction]} {m.channel.value:8} "
                   f"{who}{status}: {text}")
        if m.attachments:
            click.echo(" " * 22 + "attachments: " + ", ".join(
                str(a.get("filename") or a.get("kind")) for a in m.attachments))


@customers.command("merge")
@_config_option
@click.argument("source_id", type=int)
@click.argument("target_id", type=int)
def customers_merge(config_path: str, source_id: int, target_id: int) -> None:
    """Merge customer SOURCE_ID into TARGET_ID (identities, messages, orders move)."""
    settings = _settings(config_path)
    target = _with_db(settings, lambda: _customers(settings).merge(source_id, target_id))
    click.echo(f"merged #{source_id} into #{target.id}")


@customers.command("export")
@_config_option
@click.argument("customer_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="write to this file instead of standard output")
def customers_export(config_path: str, customer_id: int, output: str | None) -> None:
    """Write everything held on a customer as JSON."""
    settings = _settings(config_path)
    data = _with_db(settings, lambda: _customers(settings).export(customer_id))
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
        click.echo(f"exported customer #{customer_id} to {output} "
                   f"({len(data['messages'])} messages)", err=True)
    else:
        click.echo(text)


@customers.command("forget")
@_config_option
@click.argument("customer_id", type=int)
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def customers_forget(config_path: str, customer_id: int, yes: bool) -> None:
    """Erase a customer's personal data; anonymous counts stay."""
    if not yes:
        click.confirm(f"Erase all personal data of customer #{customer_id}? This cannot be "
                      "undone", abort=True)
    settings = _settings(config_path)
    counts = _with_db(settings, lambda: _customers(settings).forget(customer_id))
    click.echo(f"forgot customer #{customer_id}: " +
               ", ".join(f"{k} {v}" for k, v in counts.items()))


@main.group(name="config")
def config_group() -> None:
    """The config file."""


@config_group.command("check")
@_config_option
def config_check(config_path: str) -> None:
    """Validate a config file and say which channels it turns on."""
    s = _settings(config_path)
    click.echo(f"{config_path}: valid")
    for name, on in (("telegram", s.telegram.enabled), ("email", s.email.enabled),
                     ("sms", s.sms.enabled)):
        click.echo(f"  {name:8} {'on' if on else 'off (no credentials)'}")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


@main.group()
def tasks() -> None:
    """Scheduled work: reminders, follow-ups, surveys and response deadlines."""


@tasks.command("list")
@_config_option
@click.option("--manager", "manager_id", type=int, default=None,
              help="only this manager's tasks (manager id, see `crm managers list`)")
def tasks_list(config_path: str, manager_id: int | None) -> None:
    """Show what is due, by manager, soonest first."""
    from crm.automation import Automation
    from crm.services import Core

    settings = _settings(config_path)

    async def work() -> list[Any]:
        return await Automation(Core.build(settings)).commands.lines(manager_id)

    lines = _with_db(settings, work)
    if not lines:
        click.echo("nothing is due")
        return
    current = None
    for line in lines:
        if line.manager != current:
            current = line.manager
            click.echo(f"{current}:")
        who = f"  {line.customer}" if line.customer else ""
        text = f"  {line.text}" if line.text else ""
        click.echo(f"  #{line.id:<6} {_when(line.due_at)}  {line.kind:16}{who}{text}")


if __name__ == "__main__":  # pragma: no cover
    main()
