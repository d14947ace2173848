"""`crm orders import FILE.csv` and `crm customers import FILE.csv` (registered by crm/cli.py).

Both stream the file with a progress bar on standard error, store the good rows, list the bad
ones as FILE:LINE: FIELD: REASON on standard error and exit 1 when there were any (0 when every
row was good). `--dry-run` runs every check and stores nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from crm.imports.batch import ImportReport

_CONFIG = click.option("-c", "--config", "config_path", envvar="CRM_CONFIG",
                       default="config.toml", show_default=True,
                       help="Config file (TOML). Default: $CRM_CONFIG or ./config.toml.",
                       type=click.Path(dir_okay=False))
_FILE = click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
_DRY = click.option("--dry-run", is_flag=True,
                    help="check every row and report, but store nothing")


@click.group()
def orders() -> None:
    """Orders: import them from a CSV file (the API takes them one by one)."""


@orders.command("import")
@_CONFIG
@_FILE
@_DRY
@click.option("--notify", is_flag=True,
              help="tell customers about the statuses this import enters (off: an import is "
                   "usually history, not news)")
def orders_import(config_path: str, file: str, dry_run: bool, notify: bool) -> None:
    """Create or update orders from FILE.csv, by order number ([orders.csv] maps the columns).

    Customers are matched by email, phone or Telegram id, or created. Importing the same file
    again changes nothing.
    """
    def work(core: Any, progress: Callable[[int], object]) -> Awaitable[ImportReport]:
        from crm.imports.orders import OrderImporter

        return OrderImporter(core, actor=f"import:{Path(file).name}", notify=notify).run(
            file, dry_run=dry_run, progress=progress)

    _import(config_path, file, "orders", work, dry_run)


@click.command("import")
@_CONFIG
@_FILE
@_DRY
def customers_import(config_path: str, file: str, dry_run: bool) -> None:
    """Create or update customers from FILE.csv: addresses, name, language, tags, attributes
    and consent ([customers.csv] maps the columns). A customer is found by any of their
    addresses; importing the same file again changes nothing."""
    def work(core: Any, progress: Callable[[int], object]) -> Awaitable[ImportReport]:
        from crm.imports.customers import CustomerImporter

        return CustomerImporter(core, actor=f"import:{Path(file).name}").run(
            file, dry_run=dry_run, progress=progress)

    _import(config_path, file, "customers", work, dry_run)


def _import(config_path: str, file: str, what: str,
            work: Callable[[Any, Callable[[int], object]], Awaitable[ImportReport]],
            dry_run: bool) -> None:
    from crm import logs
    from crm.cli import _settings, _with_db
    from crm.services import Core

    settings = _settings(config_path)
    logs.setup("WARNING", settings.logging.format)  # standard error; stdout is the summary
    size = Path(file).stat().st_size
    with click.progressbar(length=size, label=f"importing {what}", file=sys.stderr) as bar:
        done = 0

        def progress(position: int) -> None:
            nonlocal done
            bar.update(max(0, min(position, size) - done))
            done = max(done, min(position, size))

        async def run() -> ImportReport:
            core = Core.build(settings)
            if not dry_run:  # a dry run stores nothing, not even a generated link key
                await core.signer.key()  # before any batch's transaction (crm/links.py: why)
            if settings.webhooks:  # status changes reach the receivers from here too
                from crm.webhooks import Webhooks

                Webhooks(core.bus, core.outbox, core.queries, settings.webhooks).install()
            return await work(core, progress)

        report = _with_db(settings, run)
    for bad in report.bad:
        click.echo(bad.describe(file), err=True)
    if report.bad_count > len(report.bad):
        click.echo(f"… and {report.bad_count - len(report.bad)} more bad rows", err=True)
    click.echo(f"{file}: {report.rows} rows: {report.good} good ({report.created} new, "
               f"{report.updated} updated, {report.unchanged} unchanged), {report.bad_count} "
               f"bad" + (f"; {report.customers_created} customers created"
                         if what == "orders" else ""))
    if report.dry_run:
        click.echo("dry run: nothing was stored")
    if report.bad_count:
        sys.exit(1)
