"""`crm replies add|list|remove` and `crm customers find`: the managers' toolkit on the command
line. Registered from crm/cli.py (`register`), which it shares its helpers with."""

from __future__ import annotations

from typing import Any

import click

from crm.types import Direction


def register(main: click.Group, customers: click.Group) -> None:
    from crm import cli

    @main.group()
    def replies() -> None:
        """Canned replies: ready answers managers send with `/r KEY` in a customer's topic."""

    @replies.command("add")
    @cli._config_option
    @click.argument("key")
    @click.argument("text")
    @click.option("--language", default=None,
                  help="the variant for customers in this language (en, ru); without it: the "
                       "variant for every other language")
    @click.option("--html", is_flag=True,
                  help="TEXT is Telegram's HTML (<b>, <i>, <a href=…>): kept on Telegram and "
                       "in mail, made plain for SMS")
    def replies_add(config_path: str, key: str, text: str, language: str | None,
                    html: bool) -> None:
        """Add a reply, or replace one variant of it.

        TEXT may use {{ customer.name }}, {{ customer.first_name }}, {{ manager.name }} and
        {{ company }}, e.g. "Hello {{ customer.first_name or 'there' }}!".
        """
        settings = cli._settings(config_path)
        row = cli._with_db(settings, lambda: cli._core(settings).replies.add(
            key, text, language=language, html=html))
        click.echo(f"saved reply {row.key} ({row.language or 'every language'})")

    @replies.command("list")
    @cli._config_option
    def replies_list(config_path: str) -> None:
        """Show the replies and their languages."""
        settings = cli._settings(config_path)
        lines = cli._with_db(settings, lambda: cli._core(settings).replies.list())
        if not lines:
            click.echo('no canned replies yet: add one with `crm replies add KEY "text"`')
            return
        for line in lines:
            click.echo(f"{line.key:24} {','.join(line.languages):8} {line.preview}")

    @replies.command("remove")
    @cli._config_option
    @click.argument("key")
    @click.option("--language", default=None, help="only this variant ('' for the default)")
    def replies_remove(config_path: str, key: str, language: str | None) -> None:
        """Remove a reply (every variant, unless --language says which)."""
        settings = cli._settings(config_path)
        count = cli._with_db(settings, lambda: cli._core(settings).replies.remove(
            key, language=language))
        click.echo(f"removed {count} variant(s) of {key}")

    @customers.command("find")
    @cli._config_option
    @click.argument("text")
    @click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
    def customers_find(config_path: str, text: str, limit: int) -> None:
        """Find customers by name or address, and messages by their words."""
        settings = cli._settings(config_path)
        group = settings.telegram.managers_chat_id

        async def work() -> Any:
            return await cli._core(settings).queries.search(text, limit, topics_in=group)

        result = cli._with_db(settings, work)
        if not result.customers and not result.messages:
            click.echo(f"nothing found for {text!r}")
            return
        if result.customers:
            click.echo("customers:")
        for c in result.customers:
            click.echo(f"  #{c.id:<6} {(c.name or '(no name)')[:30]:30}  "
                       f"{', '.join(c.addresses) or '-'}{_topic(group, c.thread_id)}")
        if result.messages:
            click.echo("messages:")
        arrows = {Direction.IN: "<-", Direction.OUT: "->", Direction.NOTE: "##"}
        for m in result.messages:
            click.echo(f"  {cli._when(m.created_at)} #{m.customer_id} "
                       f"{arrows.get(m.direction, '**')} {m.channel.value:8} {m.snippet}"
                       f"{_topic(group, m.thread_id)}")


def _topic(group: int | None, thread_id: int | None) -> str:
    if group is None or thread_id is None:
        return ""
    from channels.telegram.topics import topic_link

    return f"  {topic_link(group, thread_id)}"
