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
    # Commands print their answer on standard output; what the core logs on the way (a
    # warning) goes to standard error, never in between (`crm run` sets its own level).
    logs.setup("WARNING")


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
@click.argument("who", nargs=-1, required=True, metavar="[TELEGRAM_USER_ID] NAME")
@click.option("--email", default=None,
              help="their email, to sign in to the web console (then `crm managers password`)")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.MANAGER.value,
              show_default=True, help="admin: everything; manager: customers; marketer: campaigns")
@click.option("--username", help="Telegram @username, for /assign @name")
@click.option("--capacity", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="open conversations this manager can hold at once")
@click.option("--language", type=click.Choice(["en", "ru"]), default=None,
              help="what the bot writes to them; default: their Telegram app's language")
def managers_add(config_path: str, who: tuple[str, ...], email: str | None, role: str,
                 username: str | None, capacity: int, language: str | None) -> None:
    """Register a manager by Telegram user id, by email (--email), or both.

    `crm managers add 123456789 Ann`, `crm managers add Ann --email ann@example.com`.
    """
    from crm.managers import Managers

    if len(who) == 2 and who[0].lstrip("-").isdigit():
        telegram_user_id: int | None = int(who[0])
        name = who[1]
    elif len(who) == 1:
        telegram_user_id, name = None, who[0]
    else:
        raise click.UsageError("give TELEGRAM_USER_ID NAME, or NAME with --email (quote a name "
                               "with spaces)")
    if telegram_user_id is None and not email:
        raise click.UsageError("give a Telegram user id before the name, or --email, or both")
    m = _with_db(_settings(config_path), lambda: Managers().add(
        telegram_user_id, name, Role(role), username and username.lstrip("@"), capacity,
        language=language, email=email))
    ways = [f"Telegram {m.telegram_user_id}" if m.telegram_user_id else "",
            f"email {m.email}" if m.email else ""]
    click.echo(f"added manager #{m.id}: {m.name} ({m.role.value}), "
               f"{', '.join(w for w in ways if w)}")
    if m.email and not m.password_hash:
        click.echo(f"set their console password with `crm managers password {m.email}`")


@managers.command("password")
@_config_option
@click.argument("name")
@click.password_option("--password", prompt="New password", confirmation_prompt=True,
                       help="read from a prompt unless given (or from $CRM_PASSWORD)",
                       envvar="CRM_PASSWORD")
def managers_password(config_path: str, name: str, password: str) -> None:
    """Set the web console password of a manager (NAME: email, @username, #id or name)."""
    from crm.managers import Managers

    async def work() -> Any:
        managers = Managers()
        manager = await managers.find(name)
        await managers.set_password(manager, password)
        return manager

    m = _with_db(_settings(config_path), work)
    click.echo(f"password set for {m.name} ({m.email}): sign in at /console")


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
        email = f" <{m.email}>" if m.email else ""
        click.echo(f"{m.id:>4}  {m.telegram_user_id or '-':>12}  {m.role.value:8}  {state:7}  "
                   f"{m.name}{user}{email}")


@managers.command("remove")
@_config_option
@click.argument("who")
def managers_remove(config_path: str, who: str) -> None:
    """Remove a manager (their history stays): WHO is a Telegram user id, an email, @username,
    #id or a name."""
    from crm.managers import Managers

    async def work() -> Any:
        managers = Managers()
        return await managers.deactivate(await managers.find(who), actor="cli")

    m = _with_db(_settings(config_path), work)
    click.echo(f"removed manager #{m.id}: {m.name}")


@main.group()
def customers() -> None:
    """Customers: find, read a timeline, consent, import, merge, export or forget."""


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
    from crm.queries import CustomerFilter

    settings = _settings(config_path)

    async def work() -> tuple[list[Any], dict[int, list[str]]]:
        core = _core(settings)
        page = await core.queries.customers(CustomerFilter(q=search or None), limit)
        return page.items, await core.consent.denied_channels([c.id for c in page.items])

    rows, opted_out = _with_db(settings, work)
    if not rows:
        click.echo("no customers found")
        return
    for c in rows:
        seen = _when(c.last_seen_at)
        addresses = ", ".join(f"{i.channel.value}:{i.address}" for i in c.identities) or "-"
        where = ["every channel" if ch == "*" else ch for ch in opted_out.get(c.id, [])]
        flag = f" [no marketing: {', '.join(where)}]" if where else ""
        click.echo(f"#{c.id:<6} {(c.name or '(no name)')[:30]:30}  {seen:16}  {addresses}{flag}")


@customers.command("show")
@_config_option
@click.argument("customer_id", type=int)
@click.option("-n", "--limit", type=int, default=None, help="only the last N entries")
def customers_show(config_path: str, customer_id: int, limit: int | None) -> None:
    """Print a customer's details and timeline."""
    settings = _settings(config_path)

    async def work() -> tuple[Any, list[Any]]:
        queries = _core(settings).queries
        card = await queries.card(customer_id)
        return card, await queries.timeline(card.customer.id, limit)

    card, messages = _with_db(settings, work)
    c, conv = card.customer, card.conversations.latest
    click.echo(f"Customer #{c.id}: {c.name or '(no name)'}")
    if c.erased_at:
        click.echo(f"  personal data erased {_when(c.erased_at)}")
    for i in c.identities:
        bad = f"  (undeliverable: {i.undeliverable_reason})" if i.undeliverable_reason else ""
        click.echo(f"  {i.channel.value:8} {i.address}{bad}")
    details = [f"language {c.language}" if c.language else "",
               f"tags {', '.join(c.tags)}" if c.tags else "",
               f"lead source {c.lead_source}" if c.lead_source else ""]
    if any(details):
        click.echo("  " + "; ".join(d for d in details if d))
    from crm.consent import describe

    for line in describe(card.consent):
        click.echo(f"  {line}")
    if conv is not None:
        click.echo(f"  conversation #{conv.id}: {conv.status.value}")
    click.echo("")
    arrows = {Direction.IN: "<-", Direction.OUT: "->", Direction.NOTE: "##",
              Direction.EVENT: "**"}
    for m in messages:
        who = {"customer": "customer", "system": "system"}.get(m.author_kind, m.author_kind)
        status = f" [{m.status.value}]" if m.direction is Direction.OUT else ""
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


@main.group()
def apikeys() -> None:
    """Keys for the HTTP API (/api/v1): each with a name and scopes; only a hash is stored."""


def _scope_choices() -> list[str]:
    from crm.apikeys import Scope

    return [s.value for s in Scope]


@apikeys.command("create")
@_config_option
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(_scope_choices()),
              help="what the key may do; repeat for several (--scope customers:read "
                   "--scope messages:send)")
def apikeys_create(config_path: str, name: str, scopes: tuple[str, ...]) -> None:
    """Create a key and print it, once: it cannot be shown again.

    The key alone goes to standard output (KEY=$(crm apikeys create shop --scope …)), the
    rest to standard error. Use it as `Authorization: Bearer KEY`.
    """
    from crm.apikeys import ApiKeys

    settings = _settings(config_path)
    logs.setup(settings.logging.level, settings.logging.format)  # to stderr: stdout is the key
    row, key = _with_db(settings, lambda: ApiKeys().create(name, scopes))
    click.echo(key)
    click.echo(f"created API key {row.name!r} ({row.prefix}…) with {', '.join(row.scopes)}; "
               "store it now: it is shown only this once", err=True)


@apikeys.command("list")
@_config_option
def apikeys_list(config_path: str) -> None:
    """Show the keys: name, scopes, created and last used (never the key)."""
    from crm.apikeys import ApiKeys

    rows = _with_db(_settings(config_path), ApiKeys().list)
    if not rows:
        click.echo("no API keys yet: create one with `crm apikeys create NAME --scope …`")
        return
    click.echo(f"{'name':20}  {'key':14}  {'created':16}  {'last used':16}  scopes")
    for k in rows:
        state = f"  (revoked {_when(k.revoked_at)})" if k.revoked_at else ""
        click.echo(f"{k.name:20}  {k.prefix + '…':14}  {_when(k.created_at):16}  "
                   f"{_when(k.last_used_at):16}  {', '.join(k.scopes)}{state}")


@apikeys.command("revoke")
@_config_option
@click.argument("name")
def apikeys_revoke(config_path: str, name: str) -> None:
    """Revoke a key: calls with it get 401 from now on."""
    from crm.apikeys import ApiKeys

    row = _with_db(_settings(config_path), lambda: ApiKeys().revoke(name))
    click.echo(f"revoked API key {row.name!r} ({row.prefix}…)")


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
    click.echo(f"  {'webchat':8} " + (
        f"on at {s.http.public_url}/webchat/widget.js for "
        f"{', '.join(s.webchat.allowed_origins) or 'this server own pages only'}"
        if s.webchat.enabled else "off ([webchat] enabled = false)"))
    click.echo(f"  {'api':8} " + (f"on at {s.http.public_url}/api/v1 (docs: /api/docs)"
                                  if s.api.enabled else "off"))
    click.echo(f"  {'webhooks':8} " + (", ".join(w.url for w in s.webhooks) or "none"))
    click.echo(f"  {'links':8} " + ("signed with [http] link_secret" if s.http.link_secret else
                                    "signed with a key generated once and kept in the database "
                                    "(set CRM_LINK_SECRET to choose one)"))


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


# Commands in modules of their own, registered here: the toolkit's (crm/cli_toolkit.py:
# replies, customers find), consent (crm/cli_consent.py: customers consent), the imports
# (crm/cli_import.py: orders import, customers import) and campaigns (crm/cli_campaigns.py:
# segments, campaigns). They need the helpers above.
from crm.cli_campaigns import campaigns, segments  # noqa: E402
from crm.cli_consent import register as register_consent  # noqa: E402
from crm.cli_import import customers_import, orders  # noqa: E402
from crm.cli_reports import reports  # noqa: E402
from crm.cli_toolkit import register  # noqa: E402

register(main, customers)
register_consent(customers)
main.add_command(orders)
main.add_command(reports)
main.add_command(segments)
main.add_command(campaigns)
customers.add_command(customers_import)


if __name__ == "__main__":  # pragma: no cover
    main()
