"""`crm customers consent ID`: show or record what a customer agreed to, on their word to the
admin (a call, a letter), through the same service as the managers' `/consent`
(crm/consent_commands.py): the channels' rules hold, each change is audited with the source
`cli`. Registered from crm/cli.py (`register`), which it shares its helpers with."""

from __future__ import annotations

from typing import Any

import click

from crm.consent import CUSTOMER_CHANNELS

_SWITCH = click.Choice(["on", "off"])


def register(customers: click.Group) -> None:
    from crm import cli

    @customers.command("consent")
    @cli._config_option
    @click.argument("customer_id", type=int)
    @click.option("--marketing", type=_SWITCH, default=None,
                  help="news and offers on or off")
    @click.option("--notifications", type=_SWITCH, default=None,
                  help="transactional messages (order updates) on or off")
    @click.option("--channel", type=click.Choice([c.value for c in CUSTOMER_CHANNELS]),
                  default=None, help="only this channel (default: every channel); marketing "
                                     "by SMS is every message by SMS, as carriers require")
    def customers_consent(config_path: str, customer_id: int, marketing: str | None,
                          notifications: str | None, channel: str | None) -> None:
        """Show a customer's consent; with --marketing / --notifications, change it."""
        from crm.consent import describe
        from crm.consent_commands import ConsentOrder, apply
        from crm.types import Channel, ConsentKind, ConsentSource

        where = Channel(channel) if channel else None
        orders = [ConsentOrder(kind, value == "on", where) for kind, value in (
            (ConsentKind.MARKETING, marketing), (ConsentKind.NOTIFICATIONS, notifications))
            if value is not None]
        if channel and not orders:
            raise click.UsageError("--channel goes with --marketing or --notifications")
        settings = cli._settings(config_path)

        async def work() -> Any:
            core = cli._core(settings)
            return await apply(core, customer_id, orders, source=ConsentSource.CLI,
                               actor="cli")

        outcome = cli._with_db(settings, work)
        if orders:
            click.echo(f"customer #{outcome.customer_id}: " + (
                "changed " + ", ".join(
                    f"{c.kind.value} {'on' if c.granted else 'off'} "
                    f"({'every channel' if c.channel == '*' else c.channel})"
                    for c in outcome.changed) if outcome.changed else "nothing changed"))
        else:
            click.echo(f"customer #{outcome.customer_id}:")
        for line in describe(outcome.states):
            click.echo(f"  {line}")
