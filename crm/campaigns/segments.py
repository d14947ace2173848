"""Segments: saved filters over customers, previewed and evaluated in one SQL query.

A segment is evaluated when it is previewed (a count and a sample of ten) and when a campaign
starts sending: the campaign stores who matched at that moment (its snapshot), so a customer who
matches later is not added and one who stops matching is not dropped; an opt-out is another
matter, honoured up to the last send. An `rfm` condition is scored as the customers report
scores (crm/reports: the same rules for which orders count, the same clock and time zone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tortoise.connection import get_connection

from crm import sql
from crm.campaigns.filters import Dialect, Node, RfmScope, compile_where, parse, uses_rfm
from crm.config import ConsentSettings
from crm.errors import Conflict, InvalidField, NotFound
from crm.models import AuditLog, Segment
from crm.reports.reports import Reports

_NAME = re.compile(r"^[\w][\w .:-]{0,63}$")
SAMPLE = 10


@dataclass(frozen=True, slots=True)
class SampleRow:
    id: int
    name: str | None
    language: str | None
    channels: tuple[str, ...]  # where they have a usable address


@dataclass(frozen=True, slots=True)
class Preview:
    count: int
    sample: tuple[SampleRow, ...]


def check_name(name: object, where: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise InvalidField(where, f"{name!r}: 1 to 64 letters, digits, spaces and _ . : -, "
                                  "starting with a letter or digit")
    return name.strip()


class Segments:
    def __init__(self, consent: ConsentSettings, reports: Reports) -> None:
        self.marketing_default = consent.marketing_default == "granted"
        self.reports = reports

    async def create(self, name: str, filters: dict[str, Any], *, description: str = "",
                     actor: str = "cli", replace: bool = False) -> Segment:
        """Store a segment (or, with `replace`, change the one of that name)."""
        name = check_name(name)
        parse(filters)  # refused here, naming the key, rather than when a campaign starts
        existing = await Segment.get_or_none(name=name)
        if existing is not None and not replace:
            raise Conflict(f"a segment named {name!r} exists already: give another name, or "
                           "replace it (crm segments create FILE --replace)")
        if existing is not None:
            existing.filters, existing.description = filters, description
            await existing.save(update_fields=["filters", "description", "updated_at"])
            segment = existing
        else:
            segment = await Segment.create(name=name, filters=filters, description=description,
                                           created_by=actor[:200])
        await AuditLog.create(actor=actor[:200], action="segment.saved",
                              detail={"segment_id": segment.id, "name": name})
        return segment

    async def all(self) -> list[Segment]:
        return await Segment.all().order_by("name")

    async def get(self, ref: str | int) -> Segment:
        """By id, or by name."""
        segment = None
        if isinstance(ref, int) or str(ref).isdigit():
            segment = await Segment.get_or_none(id=int(ref))
        if segment is None:
            segment = await Segment.get_or_none(name=str(ref).strip())
        if segment is None:
            raise NotFound(f"no segment {ref!r} (crm segments list shows them)")
        return segment

    async def where(self, node: Node) -> tuple[str, list[Any]]:
        dialect: Dialect = "postgres" if sql.is_postgres(get_connection("default")) \
            else "sqlite"
        scope = RfmScope(await self.reports.rules(), self.reports.clock(),
                         self.reports.zone) if uses_rfm(node) else None
        return compile_where(node, dialect, marketing_default=self.marketing_default, rfm=scope)

    async def preview(self, filters: dict[str, Any]) -> Preview:
        """How many customers match now, and ten of them (the first by id)."""
        where, params = await self.where(parse(filters))
        conn = get_connection("default")
        count = await sql.fetch(conn, f"SELECT COUNT(*) AS n FROM customer c WHERE {where}",
                                params)
        rows = await sql.fetch(conn, "SELECT c.id, c.name, c.language FROM customer c "
                                     f"WHERE {where} ORDER BY c.id LIMIT {SAMPLE}", params)
        channels: dict[int, set[str]] = {}
        if rows:
            ids = [int(r["id"]) for r in rows]
            found = await sql.fetch(
                conn, "SELECT customer_id, channel FROM identity WHERE undeliverable_reason IS "
                      f"NULL AND customer_id IN ({sql.placeholders(len(ids))})", ids)
            for r in found:
                channels.setdefault(int(r["customer_id"]), set()).add(str(r["channel"]))
        return Preview(int(count[0]["n"]), tuple(
            SampleRow(int(r["id"]), r["name"], r["language"],
                      tuple(sorted(channels.get(int(r["id"]), ())))) for r in rows))

    async def contains(self, filters: dict[str, Any], customer_id: int) -> bool:
        """Whether the filters match this customer now."""
        where, params = await self.where(parse(filters))
        rows = await sql.fetch(get_connection("default"),
                               f"SELECT c.id FROM customer c WHERE c.id = ? AND {where}",
                               [customer_id, *params])
        return bool(rows)

    async def matching_ids(self, filters: dict[str, Any]) -> list[int]:
        """Every customer the filters match now, by id: a campaign's snapshot."""
        where, params = await self.where(parse(filters))
        rows = await sql.fetch(get_connection("default"),
                               f"SELECT c.id FROM customer c WHERE {where} ORDER BY c.id",
                               params)
        return [int(r["id"]) for r in rows]
