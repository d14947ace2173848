"""The segment builder's form, as data: conditions in groups, each group's conditions combined
with and (`all`) or or (`any`), the groups combined the same way. Pure: no I/O.

`from_form` reads the posted fields (`match`, `gm0`…, `r0.kind`, `r0.value`, …), `to_filters`
writes the filter data crm/campaigns/filters.py reads (the same as a segment's TOML), checking
each condition there so an error names it ("condition 3: …"); `from_filters` reads a saved
segment back, or says (None) that the builder cannot show it (deeper nesting than two levels,
a time of day in a date): such a segment is edited as JSON. No rule of what matches lives here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crm.campaigns.filters import parse
from crm.errors import InvalidField

LISTS = ("tag", "no_tag", "language", "lead_source", "reachable", "consent",
         "last_order_status", "rfm")
DATES = ("first_seen_after", "first_seen_before", "last_inbound_after", "last_inbound_before")
COUNTS = ("orders_min", "orders_max")
AMOUNTS = ("spent_min", "spent_max")
KINDS = (*LISTS[:4], "first_seen_after", "first_seen_before", "attribute", "reachable",
         "consent", "last_inbound_after", "last_inbound_before", *COUNTS, *AMOUNTS,
         "last_order_status", "rfm")
OPS = ("equals", "in", "exists", "gt", "gte", "lt", "lte")
MATCHES = ("all", "any")
MAX_ROWS = 40
MAX_GROUPS = 8
_NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class Row:
    kind: str = "tag"
    value: str = ""
    negate: bool = False
    key: str = ""  # the attribute's name
    op: str = "equals"  # the attribute's comparison
    currency: str = ""  # of an amount spent

    @property
    def done(self) -> bool:
        """Filled in enough to count (an unfinished one is left out, and said so)."""
        return bool(self.value.strip()) and (self.kind != "attribute" or bool(self.key.strip()))


@dataclass
class Group:
    match: str = "all"
    rows: list[Row] = field(default_factory=list)


@dataclass
class Builder:
    match: str = "all"
    groups: list[Group] = field(default_factory=lambda: [Group(rows=[Row()])])

    def numbered(self) -> list[tuple[int, int, Row]]:
        """(group, number, row) in the order shown; numbers count from 1 across groups."""
        out, n = [], 0
        for g, group in enumerate(self.groups):
            for row in group.rows:
                n += 1
                out.append((g, n, row))
        return out


def _pick(value: str | None, allowed: tuple[str, ...], default: str) -> str:
    return value if value in allowed else default


def from_form(form: Mapping[str, Any]) -> Builder:
    def text(name: str, limit: int = 200) -> str:
        return str(form.get(name, "")).strip()[:limit]

    numbers = sorted({int(m.group(1)) for k in form if (m := re.match(r"^r(\d{1,3})\.kind$", k))})
    groups_seen = sorted({int(m.group(1)) for k in form if (m := re.match(r"^gm(\d{1,2})$", k))})
    count = min(MAX_GROUPS, max([g + 1 for g in groups_seen] + [1]))
    builder = Builder(_pick(text("match"), MATCHES, "all"),
                      [Group(_pick(text(f"gm{g}"), MATCHES, "all")) for g in range(count)])
    for n in numbers[:MAX_ROWS]:
        g = text(f"r{n}.g")
        at = int(g) if g.isdigit() and int(g) < count else 0
        builder.groups[at].rows.append(Row(
            _pick(text(f"r{n}.kind"), KINDS, "tag"), text(f"r{n}.value", 2000),
            form.get(f"r{n}.not") == "on", text(f"r{n}.key", 64),
            _pick(text(f"r{n}.op"), OPS, "equals"), text(f"r{n}.currency", 3).upper()))
    return _tidy(builder)


def _tidy(builder: Builder) -> Builder:
    """No empty group; never no condition at all (one to fill in)."""
    builder.groups = [g for g in builder.groups if g.rows] or [Group(rows=[Row()])]
    return builder


def act(builder: Builder, action: str) -> Builder:
    """A button of the builder: add-row:G, remove-row:N (as numbered), add-group,
    remove-group:G."""
    name, _, arg = action.partition(":")
    total = sum(len(g.rows) for g in builder.groups)
    if name == "add-row" and arg.isdigit() and int(arg) < len(builder.groups) \
            and total < MAX_ROWS:
        builder.groups[int(arg)].rows.append(Row())
    elif name == "add-group" and len(builder.groups) < MAX_GROUPS and total < MAX_ROWS:
        builder.groups.append(Group(rows=[Row()]))
    elif name == "remove-row" and arg.isdigit():
        for g, n, row in builder.numbered():
            if n == int(arg):
                builder.groups[g].rows.remove(row)
    elif name == "remove-group" and arg.isdigit() and int(arg) < len(builder.groups):
        del builder.groups[int(arg)]
    return _tidy(builder)


def _typed(value: str) -> str | int | float | bool:
    """An attribute's value as JSON holds it: true/false, a number, else text."""
    if value in ("true", "false"):
        return value == "true"
    if _NUMBER.match(value):
        return float(value) if "." in value else int(value)
    return value


def _listed(value: str) -> list[str] | str:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


def _table(row: Row) -> dict[str, Any]:
    value = row.value.strip()
    table: dict[str, Any]
    if row.kind == "attribute":
        if row.op == "exists":
            table = {"attribute": row.key, "exists": value != "false"}
        elif row.op == "in":
            table = {"attribute": row.key, "in": [_typed(v) for v in
                                                  [p.strip() for p in value.split(",")] if v]}
        else:
            table = {"attribute": row.key, row.op: _typed(value)}
    elif row.kind in COUNTS:
        table = {row.kind: int(value) if value.isdigit() else value}
    elif row.kind in AMOUNTS:
        table = {row.kind: value, **({"currency": row.currency} if row.currency else {})}
    elif row.kind in LISTS:
        table = {row.kind: _listed(value)}
    else:
        table = {row.kind: value}
    return {"not": table} if row.negate else table


def to_filters(builder: Builder) -> tuple[dict[str, Any], dict[int, str]]:
    """The filter data, and the problems of conditions by number (those are left out).
    Unfinished conditions (no value yet) are left out too, without a problem."""
    problems: dict[int, str] = {}
    groups: list[dict[str, Any]] = []
    number = 0
    for group in builder.groups:
        tables = []
        for row in group.rows:
            number += 1
            if not row.done:
                continue
            table = _table(row)
            try:
                parse(table, f"condition {number}")
            except InvalidField as e:
                problems[number] = str(e)
                continue
            tables.append(table)
        if tables:
            groups.append(tables[0] if len(tables) == 1 else {group.match: tables})
    if not groups:
        return {}, problems
    return (groups[0] if len(groups) == 1 else {builder.match: groups}), problems


# --- a saved segment back into the builder ------------------------------------------------------

def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _rows(table: Any) -> list[Row] | None:
    """The conditions of a table all of which must hold; None: more than the builder shows."""
    if not isinstance(table, Mapping):
        return None
    keys = dict(table)
    rows: list[Row] = []
    if "attribute" in keys:
        ops = [op for op in OPS if op in keys]
        if len(ops) != 1:
            return None
        rows.append(Row("attribute", _text(keys.pop(ops[0])), key=str(keys.pop("attribute")),
                        op=ops[0]))
    currency = str(keys.pop("currency", "") or "")
    for key, value in keys.items():
        if key == "all" and isinstance(value, list):
            for item in value:
                inner = _rows(item)
                if inner is None:
                    return None
                rows += inner
        elif key == "not":
            inner = _rows(value)
            if inner is None or len(inner) != 1 or inner[0].negate:
                return None
            inner[0].negate = True
            rows += inner
        elif key in LISTS or key == "tags_any":
            rows.append(Row("tag" if key == "tags_any" else key, _text(value)))
        elif key in DATES:
            if not _DATE.match(str(value)):
                return None  # a time of day: the date field cannot hold it
            rows.append(Row(key, str(value)))
        elif key in COUNTS:
            rows.append(Row(key, _text(value)))
        elif key in AMOUNTS:
            rows.append(Row(key, _text(value), currency=currency))
        else:
            return None
    return rows


def _group(table: Any) -> Group | None:
    if isinstance(table, Mapping) and set(table) == {"any"} and isinstance(table["any"], list):
        rows = [_rows(item) for item in table["any"]]
        if any(r is None or len(r) != 1 for r in rows):
            return None
        return Group("any", [r[0] for r in rows if r])
    found = _rows(table)
    return Group("all", found) if found else None


def from_filters(filters: Mapping[str, Any] | None) -> Builder | None:
    data = dict(filters or {})
    if not data:
        return Builder()
    if set(data) == {"any"} and isinstance(data["any"], list):
        one = _group(data)
        if one is not None:  # one group of single conditions
            return Builder("all", [one])
        groups = [_group(item) for item in data["any"]]
        return Builder("any", [g for g in groups if g]) if None not in groups else None
    groups_all: list[Group | None] = []
    main: list[Row] = []
    if isinstance(data.get("all"), list):
        items = data.pop("all")
        flat = [_rows(item) for item in items]
        if all(f is not None for f in flat):
            main += [r for f in flat for r in f or []]
        else:
            groups_all += [_group(item) for item in items]
    if "any" in data:
        groups_all.append(_group({"any": data.pop("any")}))
    if data:
        rest = _rows(data)
        if rest is None:
            return None
        main = rest + main
    if main:
        groups_all.insert(0, Group("all", main))
    if not groups_all or None in groups_all:
        return None
    return Builder("all", [g for g in groups_all if g is not None])
