"""`crm segments …` and `crm campaigns …` (registered by crm/cli.py).

A file that cannot be used is refused as FILE:LINE: FIELD: REASON, and nothing is stored.
Commands change the database; the running service (`crm run`) does the sending: a campaign
scheduled here starts at its time there.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from crm.errors import InvalidField

T = TypeVar("T")

_CONFIG = click.option("-c", "--config", "config_path", envvar="CRM_CONFIG",
                       default="config.toml", show_default=True,
                       help="Config file (TOML). Default: $CRM_CONFIG or ./config.toml.",
                       type=click.Path(dir_okay=False))
_FILE = click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
_ID = click.argument("campaign_id", type=int)


def _run(config_path: str, work: Callable[[Any], Awaitable[T]]) -> T:
    from crm.cli import _settings, _with_db
    from crm.services import Core

    settings = _settings(config_path)

    async def main() -> T:
        core = Core.build(settings)
        await core.signer.key()  # before any transaction (crm/links.py says why)
        return await work(core)

    return _with_db(settings, main)


def _read_toml(file: str) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(file).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise click.ClickException(f"{file}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise click.ClickException(f"{file}: cannot read: {e}") from None


def _where(file: str | None, error: InvalidField) -> str:
    """FILE:LINE: FIELD: REASON, the line being where the field's last key is written."""
    if file is None:
        return str(error)
    key = re.split(r"[.\[\]]+", error.field.strip("]"))[-1] or error.field
    line = None
    for number, text in enumerate(Path(file).read_text(encoding="utf-8").splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", text) or text.strip() in (
                f"[{key}]", f"[[{key}]]") or text.strip().endswith(f".{key}]"):
            line = number
            break
    return f"{file}{f':{line}' if line else ''}: {error}"


def _checked(file: str, work: Callable[[Any], Awaitable[T]]) -> Callable[[Any], Awaitable[T]]:
    async def run(core: Any) -> T:
        try:
            return await work(core)
        except InvalidField as e:
            raise click.ClickException(_where(file, e)) from None

    return run


@click.group()
def segments() -> None:
    """Segments: saved filters over customers, for campaigns."""


@segments.command("create")
@_CONFIG
@_FILE
@click.option("--replace", is_flag=True, help="change the segment of that name if it exists")
def segments_create(config_path: str, file: str, replace: bool) -> None:
    """Save the segment in FILE.toml (name, description, [filter]); see the README."""
    data = _read_toml(file)
    unknown = sorted(set(data) - {"name", "description", "filter"})
    if unknown:
        raise click.ClickException(f"{file}: {unknown[0]}: unknown key (name, description, "
                                   "[filter])")
    if "name" not in data:
        raise click.ClickException(f"{file}: name: required")

    async def work(core: Any) -> Any:
        segment = await core.segments.create(
            data["name"], data.get("filter") or {}, description=str(data.get("description", "")),
            actor="cli", replace=replace)
        return segment, await core.segments.preview(segment.filters)

    segment, preview = _run(config_path, _checked(file, work))
    click.echo(f"saved segment {segment.name!r}: {preview.count} customers match now")


@segments.command("list")
@_CONFIG
def segments_list(config_path: str) -> None:
    """The saved segments."""
    async def work(core: Any) -> list[Any]:
        return list(await core.segments.all())

    rows = _run(config_path, work)
    if not rows:
        click.echo("no segments yet: crm segments create FILE.toml")
        return
    for s in rows:
        filters = json.dumps(s.filters, ensure_ascii=False, default=str)
        click.echo(f"{s.name:24} {filters[:80]}" + (f"  ({s.description})"
                                                    if s.description else ""))


@segments.command("preview")
@_CONFIG
@click.argument("name")
def segments_preview(config_path: str, name: str) -> None:
    """How many customers the segment matches now, and ten of them."""
    async def work(core: Any) -> Any:
        return await core.segments.preview((await core.segments.get(name)).filters)

    preview = _run(config_path, work)
    click.echo(f"{preview.count} customers match {name!r} now")
    for row in preview.sample:
        click.echo(f"  #{row.id:<7} {(row.name or '(no name)')[:30]:30} "
                   f"{row.language or '-':3} {', '.join(row.channels) or 'no usable address'}")


@click.group()
def campaigns() -> None:
    """Campaigns: broadcasts to a segment, on the channel each customer prefers."""


@campaigns.command("create")
@_CONFIG
@_FILE
def campaigns_create(config_path: str, file: str) -> None:
    """A draft campaign from FILE.toml (see the README); prints its id."""
    data = _read_toml(file)

    async def work(core: Any) -> Any:
        return await core.campaigns.create(data, actor="cli", base_dir=Path(file).parent)

    campaign = _run(config_path, _checked(file, work))
    click.echo(f"created campaign #{campaign.id} {campaign.name!r} (draft): preview it with "
               f"`crm campaigns preview {campaign.id}`, then `crm campaigns test "
               f"{campaign.id}` and `crm campaigns schedule {campaign.id}`")


@campaigns.command("list")
@_CONFIG
def campaigns_list(config_path: str) -> None:
    """The latest campaigns: state, start, figures."""
    async def work(core: Any) -> list[tuple[Any, Any]]:
        return [(c, await core.campaigns.stats(c.id)) for c in await core.campaigns.all()]

    rows = _run(config_path, work)
    if not rows:
        click.echo("no campaigns yet: crm campaigns create FILE.toml")
        return
    click.echo(f"{'id':>4}  {'state':9}  {'start':16}  {'sent':>6}/{'of':<6}  name")
    for c, s in rows:
        click.echo(f"{c.id:>4}  {c.state.value:9}  {_when(c.start_at):16}  "
                   f"{s.total.sent:>6}/{s.total.recipients:<6}  {c.name}")


@campaigns.command("preview")
@_CONFIG
@_ID
def campaigns_preview(config_path: str, campaign_id: int) -> None:
    """Who it reaches on which channel, each message as it reads, SMS segments, the cost."""
    preview = _run(config_path, lambda core: core.campaigns.preview(campaign_id))
    click.echo(f"Campaign #{preview.campaign_id} {preview.name!r} ({preview.state})")
    click.echo(f"  segment: {preview.segment.count} customers match now")
    reach = ", ".join(f"{k} {v}" for k, v in preview.reach.items())
    click.echo(f"  reach: {reach}")
    click.echo(f"  start: {_when(preview.start_at) if preview.start_at else 'when scheduled'};"
               f" quiet hours {preview.quiet_hours} in each customer's time zone")
    if preview.ab:
        click.echo(f"  A/B: {preview.ab}")
    if preview.paid_broadcast:
        click.echo(f"  Telegram paid broadcast: up to {preview.stars:g} Stars "
                   f"(0.1 a message)")
    for sample in preview.samples:
        head = f"--- variant {sample.variant}, {sample.channel}"
        if sample.sms_segments is not None:
            head += f" ({sample.sms_segments} segment(s), {sample.sms_encoding})"
        click.echo(head)
        if sample.subject:
            click.echo(f"Subject: {sample.subject}")
        click.echo(sample.html if sample.channel == "telegram" and sample.html else sample.text)
    for warning in preview.warnings:
        click.echo(f"warning: {warning}", err=True)


@campaigns.command("test")
@_CONFIG
@_ID
@click.option("--marketer", "telegram_id", type=int, default=None,
              help="the marketer's Telegram id (default: the campaign's marketer)")
@click.option("--email", default=None, help="also send the email for real to this address")
@click.option("--sms", default=None, help="also send the SMS for real to this number")
def campaigns_test(config_path: str, campaign_id: int, telegram_id: int | None,
                   email: str | None, sms: str | None) -> None:
    """Send the campaign to the marketer first: in their Telegram chat (every variant, the
    email and SMS shown as they read), and for real to --email / --sms if given."""
    async def work(core: Any) -> list[str]:
        from crm.models import Manager
        from crm.types import Channel

        campaign = await core.campaigns.get(campaign_id)
        if telegram_id is not None:
            marketer = await Manager.get_or_none(telegram_user_id=telegram_id, active=True)
        elif campaign.created_by_id is not None:
            marketer = await Manager.get_or_none(id=campaign.created_by_id)
        else:
            raise click.ClickException("whose test is it? give --marketer TELEGRAM_ID (a "
                                       "marketer or admin of the team)")
        if marketer is None:
            raise click.ClickException(f"no manager with Telegram id {telegram_id}")
        to = {Channel.EMAIL: email, Channel.SMS: sms}
        sent: list[str] = await core.campaigns.test(campaign_id, marketer,
                                                    {k: v for k, v in to.items() if v})
        return sent

    for line in _run(config_path, work):
        click.echo(f"queued test: {line}")
    click.echo("the running service sends them (crm run)")


@campaigns.command("schedule")
@_CONFIG
@_ID
@click.option("--at", "at", default=None,
              help='"2026-04-01 10:00" (the campaign\'s time zone) or with an offset; '
                   "default: the time in its file, or now")
def campaigns_schedule(config_path: str, campaign_id: int, at: str | None) -> None:
    """Schedule a draft (or start a missed campaign by hand: without --at, now)."""
    from crm.campaigns.service import parse_at

    when = parse_at(at) if at else None
    campaign = _run(config_path, lambda core: core.campaigns.schedule(
        campaign_id, when, actor="cli"))
    click.echo(f"campaign #{campaign.id} scheduled for {_when(campaign.start_at)} UTC")


@campaigns.command("pause")
@_CONFIG
@_ID
def campaigns_pause(config_path: str, campaign_id: int) -> None:
    """Pause: nothing more goes until it is resumed (messages being sent finish)."""
    taken = _run(config_path, lambda core: core.campaigns.pause(campaign_id, actor="cli"))
    click.echo(f"campaign #{campaign_id} paused ({taken} queued messages taken back)")


@campaigns.command("resume")
@_CONFIG
@_ID
def campaigns_resume(config_path: str, campaign_id: int) -> None:
    """Go on after a pause; a missed campaign starts now."""
    campaign = _run(config_path, lambda core: core.campaigns.resume(campaign_id, actor="cli"))
    click.echo(f"campaign #{campaign.id} is {campaign.state.value}")


@campaigns.command("cancel")
@_CONFIG
@_ID
def campaigns_cancel(config_path: str, campaign_id: int) -> None:
    """Cancel: nobody else gets it (messages being sent finish)."""
    taken = _run(config_path, lambda core: core.campaigns.cancel(campaign_id, actor="cli"))
    click.echo(f"campaign #{campaign_id} cancelled ({taken} queued messages taken back)")


@campaigns.command("stats")
@_CONFIG
@_ID
@click.option("--json", "as_json", is_flag=True, help="as JSON")
def campaigns_stats(config_path: str, campaign_id: int, as_json: bool) -> None:
    """Results per channel and variant: sent, delivered, failed, replies, clicks, opt-outs."""
    stats = _run(config_path, lambda core: core.campaigns.stats(campaign_id))
    if as_json:
        click.echo(json.dumps(stats.to_json(), indent=2))
        return
    click.echo(f"Campaign #{stats.campaign_id} {stats.name!r}: {stats.state}"
               + (f" ({stats.reason})" if stats.reason else "")
               + (f"; A/B winner {stats.winner}" if stats.winner else ""))
    columns = ("recipients", "sent", "delivered", "failed", "replied", "clicked", "opted_out",
               "deferred", "pending", "queued")
    click.echo(f"{'':12}" + "".join(f"{c[:9]:>10}" for c in columns))
    rows = [("total", stats.total)]
    rows += [(f"channel {k or 'none'}", v) for k, v in stats.by_channel.items()]
    rows += [(f"variant {k or 'none'}", v) for k, v in stats.by_variant.items()
             if len(stats.by_variant) > 1]
    for label, figures in rows:
        click.echo(f"{label[:12]:12}" + "".join(f"{getattr(figures, c):>10}" for c in columns))
    if stats.total.skipped:
        click.echo("skipped: " + ", ".join(f"{k} {v}" for k, v in stats.total.skipped.items()))
    if stats.total.failed_by_reason:
        click.echo("failed: " + ", ".join(f"{k} {v}"
                                          for k, v in stats.total.failed_by_reason.items()))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"

