"""Segment filters as data, compiled to one SQL condition over `customer c`. Pure: no I/O.

A filter is a table (TOML) or an object (JSON). Its keys are conditions, all of which must hold;
`all = [...]`, `any = [...]` and `not = {...}` combine tables:

    language = "ru"                 # or a list: any of them
    tag = "vip"                     # tags_any = [..], no_tag = ".."
    reachable = "telegram"          # an address there not marked undeliverable (list: any)
    consent = "email"               # marketing consent holds there (list: any)
    last_inbound_after = 2026-01-01 # last_inbound_before; first_seen_after, first_seen_before
    lead_source = "instagram"       # or a list
    attribute = "plan", equals = "gold"   # or in = [..], exists = true, gt/gte/lt/lte = 10
    orders_min = 2                  # orders_max
    spent_min = 100, currency = "EUR"     # spent_max; in the currency's units, cancelled
                                          # orders left out; without currency: every order
    last_order_status = "delivered" # or a list
    rfm = ["champions", "loyal"]    # RFM segments, as the customers report names them;
    rfm_days = 365                  # scored over the last N days (365, as that report)

`parse` turns that into frozen dataclasses, naming the offending key (`filter.any[1].tag`) when
something is wrong; `compile_where` turns them into SQL text and parameters for SQLite or
PostgreSQL (JSON columns are `json` on PostgreSQL, hence the `::jsonb` casts). An `rfm`
condition embeds the reports' own scoring statement (crm/reports/rfm.py `members_sql`), so a
segment and the customers report put every customer in the same RFM segment; it needs an
`RfmScope` (which orders count, now, the team's time zone), which crm/campaigns/segments.py
gives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from crm.errors import InvalidField
from crm.orders.numbers import InvalidOrder, check_currency, to_minor
from crm.reports.money import OrderRules
from crm.reports.period import last_days
from crm.reports.rfm import Segment, members_sql, segment_named

Dialect = Literal["sqlite", "postgres"]
CHANNELS = ("telegram", "email", "sms")
_ATTRIBUTE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_COMPARE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
MAX_DEPTH = 8
MAX_VALUES = 200
RFM_DAYS = 365  # the customers report's default period: a segment means what it shows
MAX_RFM_DAYS = 3650


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class NotOf:
    item: Node


@dataclass(frozen=True, slots=True)
class Tags:
    values: tuple[str, ...]
    present: bool = True  # False: has none of them


@dataclass(frozen=True, slots=True)
class Column:
    """A customer column equal to one of `values` (language, lead source)."""

    column: Literal["language", "lead_source"]
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reachable:
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Consented:
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Moment:
    """A customer's time column before (<) or after (>=) a moment, in UTC."""

    column: Literal["last_seen_at", "created_at"]
    after: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class Attribute:
    key: str
    op: Literal["equals", "in", "exists", "gt", "gte", "lt", "lte"]
    value: Any


@dataclass(frozen=True, slots=True)
class OrderCount:
    low: int | None
    high: int | None


@dataclass(frozen=True, slots=True)
class Spent:
    low: int | None  # minor units
    high: int | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class LastOrderStatus:
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rfm:
    """Customers in any of these RFM segments, scored over the last `days` whole days."""

    segments: tuple[Segment, ...]
    days: int = RFM_DAYS


@dataclass(frozen=True, slots=True)
class RfmScope:
    """What RFM scores need besides the filter: which orders count (the reports' rules), now,
    and the team's time zone (a day starts at its midnight, as in the reports)."""

    rules: OrderRules
    now: datetime
    zone: ZoneInfo


Node = (AllOf | AnyOf | NotOf | Tags | Column | Reachable | Consented | Moment | Attribute
        | OrderCount | Spent | LastOrderStatus | Rfm)


# --- parsing ------------------------------------------------------------------------------

def parse(data: Mapping[str, Any] | None, where: str = "filter") -> Node:
    """The filter tree of a table; InvalidField naming the key when it cannot be one."""
    return _table(data or {}, where, 0)


def _table(data: Any, where: str, depth: int) -> Node:
    if not isinstance(data, Mapping):
        raise InvalidField(where, "a table of conditions is expected, such as "
                                  "{ language = \"ru\" }")
    if depth > MAX_DEPTH:
        raise InvalidField(where, f"filters nest at most {MAX_DEPTH} deep")
    keys = dict(data)
    items: list[Node] = []
    for name in ("all", "any"):
        if name in keys:
            value = keys.pop(name)
            if not isinstance(value, list) or not value:
                raise InvalidField(f"{where}.{name}", "a non-empty list of tables is expected")
            parts = tuple(_table(v, f"{where}.{name}[{i}]", depth + 1)
                          for i, v in enumerate(value))
            items.append(AllOf(parts) if name == "all" else AnyOf(parts))
    if "not" in keys:
        items.append(NotOf(_table(keys.pop("not"), f"{where}.not", depth + 1)))
    if "attribute" in keys:
        items.append(_attribute(keys, where))
    if {"orders_min", "orders_max"} & keys.keys():
        items.append(OrderCount(_count(keys.pop("orders_min", None), f"{where}.orders_min"),
                                _count(keys.pop("orders_max", None), f"{where}.orders_max")))
    if {"spent_min", "spent_max"} & keys.keys():
        items.append(_spent(keys, where))
    elif "currency" in keys:
        raise InvalidField(f"{where}.currency", "goes with spent_min or spent_max")
    if "rfm" in keys:
        items.append(_rfm(keys, where))
    elif "rfm_days" in keys:
        raise InvalidField(f"{where}.rfm_days", "goes with rfm")
    for key, value in keys.items():
        items.append(_leaf(key, value, f"{where}.{key}"))
    return items[0] if len(items) == 1 else AllOf(tuple(items))


def _leaf(key: str, value: Any, where: str) -> Node:
    if key in ("tag", "tags_any"):
        return Tags(_strings(value, where, lower=True))
    if key == "no_tag":
        return Tags(_strings(value, where, lower=True), present=False)
    if key == "language":
        return Column("language", _strings(value, where, lower=True))
    if key == "lead_source":
        return Column("lead_source", _strings(value, where))
    if key in ("reachable", "consent"):
        channels = _strings(value, where, lower=True)
        bad = [c for c in channels if c not in CHANNELS]
        if bad:
            raise InvalidField(where, f"{bad[0]!r} is not a channel: use "
                                      f"{', '.join(CHANNELS)}")
        return Reachable(channels) if key == "reachable" else Consented(channels)
    moments = {"last_inbound_after": ("last_seen_at", True),
               "last_inbound_before": ("last_seen_at", False),
               "first_seen_after": ("created_at", True),
               "first_seen_before": ("created_at", False)}
    if key in moments:
        column, after = moments[key]
        return Moment(column, after, _moment(value, where))  # type: ignore[arg-type]
    if key == "last_order_status":
        return LastOrderStatus(_strings(value, where, lower=True))
    if key in ("equals", "in", "exists", *_COMPARE):
        raise InvalidField(where, "goes with attribute = \"NAME\"")
    known = ("all, any, not, tag, tags_any, no_tag, language, lead_source, reachable, consent, "
             "last_inbound_after, last_inbound_before, first_seen_after, first_seen_before, "
             "attribute, orders_min, orders_max, spent_min, spent_max, last_order_status, "
             "rfm")
    raise InvalidField(where, f"unknown condition; the conditions are: {known}")


def _rfm(keys: dict[str, Any], where: str) -> Rfm:
    names = _strings(keys.pop("rfm"), f"{where}.rfm")
    segments = []
    for name in names:
        try:
            segments.append(segment_named(name))
        except ValueError:
            raise InvalidField(f"{where}.rfm", f"{name!r} is not an RFM segment: use "
                                               f"{', '.join(s.value for s in Segment)}") from None
    days = keys.pop("rfm_days", RFM_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RFM_DAYS:
        raise InvalidField(f"{where}.rfm_days", f"{days!r} is not a whole number of days from 1 "
                                                f"to {MAX_RFM_DAYS}")
    return Rfm(tuple(dict.fromkeys(segments)), days)


def uses_rfm(node: Node) -> bool:
    """Whether compiling `node` needs an `RfmScope`."""
    if isinstance(node, AllOf | AnyOf):
        return any(uses_rfm(n) for n in node.items)
    if isinstance(node, NotOf):
        return uses_rfm(node.item)
    return isinstance(node, Rfm)


def _strings(value: Any, where: str, lower: bool = False) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_VALUES:
        raise InvalidField(where, f"give 1 to {MAX_VALUES} values")
    out = []
    for v in values:
        if not isinstance(v, str) or not v.strip() or len(v) > 200:
            raise InvalidField(where, f"{v!r} is not a text of 1 to 200 characters")
        out.append(v.strip().lower() if lower else v.strip())
    return tuple(out)


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidField(where, f"{value!r} is not a whole number of 0 or more")
    return value


def _moment(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip()) if "T" in value or ":" in value \
                else date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidField(where, f"{value!r} is not a date (2026-01-31) or a time "
                                      "(2026-01-31T10:00:00+00:00)") from None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    raise InvalidField(where, f"{value!r} is not a date (2026-01-31)")


def _attribute(keys: dict[str, Any], where: str) -> Attribute:
    name = keys.pop("attribute")
    if not isinstance(name, str) or not _ATTRIBUTE.match(name):
        raise InvalidField(f"{where}.attribute", f"{name!r} is not an attribute name (letters, "
                                                 "digits, _ . -, up to 64)")
    ops = [op for op in ("equals", "in", "exists", *_COMPARE) if op in keys]
    if len(ops) != 1:
        raise InvalidField(f"{where}.attribute", "give exactly one of equals, in, exists, gt, "
                                                 "gte, lt, lte")
    op = ops[0]
    value = keys.pop(op)
    here = f"{where}.{op}"
    if op == "exists" and not isinstance(value, bool):
        raise InvalidField(here, "true or false")
    if op in _COMPARE and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidField(here, f"{value!r} is not a number")
    if op == "in":
        if not isinstance(value, list) or not value or len(value) > MAX_VALUES:
            raise InvalidField(here, f"a list of 1 to {MAX_VALUES} values")
        for v in value:
            _scalar(v, here)
        value = tuple(value)
    if op == "equals":
        _scalar(value, here)
    return Attribute(name, op, value)  # type: ignore[arg-type]


def _scalar(value: Any, where: str) -> None:
    if not isinstance(value, str | int | float | bool):
        raise InvalidField(where, f"{value!r}: a text, a number, true or false")


def _spent(keys: dict[str, Any], where: str) -> Spent:
    currency = keys.pop("currency", None)
    if currency is not None:
        try:
            currency = check_currency(str(currency))
        except InvalidOrder as e:
            raise InvalidField(f"{where}.currency", e.reason) from None
    bounds: list[int | None] = []
    for name in ("spent_min", "spent_max"):
        value = keys.pop(name, None)
        if value is None:
            bounds.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidField(f"{where}.{name}", f"{value!r} is not an amount")
        try:
            bounds.append(to_minor(value, currency))
        except InvalidOrder as e:
            raise InvalidField(f"{where}.{name}", e.reason) from None
    return Spent(bounds[0], bounds[1], currency)


# --- compiling ----------------------------------------------------------------------------

@dataclass
class _Sql:
    dialect: Dialect
    marketing_default: bool
    params: list[Any]
    rfm: RfmScope | None = None

    def compile(self, node: Node) -> str:
        method = getattr(self, f"_{type(node).__name__}")
        return str(method(node))

    def _AllOf(self, node: AllOf) -> str:
        if not node.items:
            return "TRUE"
        return "(" + " AND ".join(self.compile(n) for n in node.items) + ")"

    def _AnyOf(self, node: AnyOf) -> str:
        return "(" + " OR ".join(self.compile(n) for n in node.items) + ")"

    def _NotOf(self, node: NotOf) -> str:
        # SQL's unknown (a customer without orders has no last status) is "does not match"
        # inside the NOT too, so NOT of it matches.
        return f"NOT COALESCE({self.compile(node.item)}, FALSE)"

    def _Tags(self, node: Tags) -> str:
        parts = []
        for tag in node.values:
            if self.dialect == "postgres":
                parts.append("c.tags::jsonb @> ?::jsonb")
                self.params.append(json.dumps([tag]))
            else:
                parts.append("EXISTS (SELECT 1 FROM json_each(c.tags) t WHERE t.value = ?)")
                self.params.append(tag)
        any_of = "(" + " OR ".join(parts) + ")"
        return any_of if node.present else f"NOT {any_of}"

    def _in(self, expression: str, values: Sequence[Any]) -> str:
        self.params.extend(values)
        return f"{expression} IN ({', '.join('?' * len(values))})"

    def _Column(self, node: Column) -> str:
        expression = "LOWER(c.language)" if node.column == "language" else "c.lead_source"
        return self._in(expression, node.values)

    def _Reachable(self, node: Reachable) -> str:
        return ("EXISTS (SELECT 1 FROM identity i WHERE i.customer_id = c.id AND "
                f"{self._in('i.channel', node.channels)} AND i.undeliverable_reason IS NULL)")

    def _Consented(self, node: Consented) -> str:
        # crm/consent.py `effective`: the newer of the channel's own word and the every-channel
        # word ("*"), the channel's winning a tie; with neither, the configured default.
        default = "TRUE" if self.marketing_default else "FALSE"
        parts = []
        for channel in node.channels:
            parts.append(
                "COALESCE((SELECT g.granted FROM consent g WHERE g.customer_id = c.id AND "
                "g.kind = 'marketing' AND g.channel IN (?, '*') ORDER BY g.changed_at DESC, "
                "CASE WHEN g.channel = '*' THEN 0 ELSE 1 END DESC, g.id DESC LIMIT 1), "
                f"{default}) = TRUE")
            self.params.append(channel)
        return "(" + " OR ".join(parts) + ")"

    def _Moment(self, node: Moment) -> str:
        # In UTC, as stored: SQLite compares the stored text (crm/queries.py says so too).
        self.params.append(node.at)
        return f"c.{node.column} {'>=' if node.after else '<'} ?"

    def _Attribute(self, node: Attribute) -> str:
        if node.op == "in":
            return "(" + " OR ".join(self._Attribute(Attribute(node.key, "equals", v))
                                     for v in node.value) + ")"
        if self.dialect == "postgres":
            value = "(c.attributes::jsonb -> ?::text)"
            if node.op == "exists":
                self.params.append(node.key)
                return f"{value} IS {'NOT ' if node.value else ''}NULL"
            if node.op == "equals":
                self.params += [node.key, json.dumps(node.value)]
                return f"{value} = ?::jsonb"
            self.params += [node.key, node.key, float(node.value)]
            return (f"(CASE WHEN jsonb_typeof{value} = 'number' THEN (c.attributes::jsonb ->> "
                    f"?::text)::float8 END) {_COMPARE[node.op]} ?::float8")
        path = '$."' + node.key + '"'
        if node.op == "exists":
            self.params.append(path)
            return f"(json_type(c.attributes, ?) IS NOT NULL) = {1 if node.value else 0}"
        if node.op == "equals":
            self.params += [path, node.value]
            return "json_extract(c.attributes, ?) = ?"
        self.params += [path, path, float(node.value)]
        return ("(CASE WHEN json_type(c.attributes, ?) IN ('integer', 'real') THEN "
                f"json_extract(c.attributes, ?) END) {_COMPARE[node.op]} ?")

    def _OrderCount(self, node: OrderCount) -> str:
        count = "(SELECT COUNT(*) FROM customer_order o WHERE o.customer_id = c.id)"
        return self._between(count, node.low, node.high)

    def _Spent(self, node: Spent) -> str:
        currency = ""
        if node.currency:
            currency = " AND o.currency = ?"
            self.params.append(node.currency)
        total = ("(SELECT COALESCE(SUM(o.amount_minor), 0) FROM customer_order o WHERE "
                 f"o.customer_id = c.id AND o.status <> 'cancelled'{currency})")
        return self._between(total, node.low, node.high)

    def _between(self, expression: str, low: int | None, high: int | None) -> str:
        parts = []
        for bound, op in ((low, ">="), (high, "<=")):
            if bound is not None:
                parts.append(f"{expression} {op} ?")
                self.params.append(bound)
        return "(" + " AND ".join(parts) + ")" if parts else "TRUE"

    def _LastOrderStatus(self, node: LastOrderStatus) -> str:
        last = ("(SELECT o.status FROM customer_order o WHERE o.customer_id = c.id "
                "ORDER BY COALESCE(o.placed_at, o.created_at) DESC, o.id DESC LIMIT 1)")
        return self._in(last, node.values)

    def _Rfm(self, node: Rfm) -> str:
        # Not correlated with `c`: both databases run the scoring once for the whole query.
        if self.rfm is None:
            raise ValueError("an rfm condition is compiled with an RfmScope")
        window = last_days(node.days, self.rfm.now, self.rfm.zone)
        query, params = members_sql(node.segments, self.rfm.rules, window.start, window.end)
        self.params.extend(params)
        return f"c.id IN ({query})"


def compile_where(node: Node, dialect: Dialect, *, marketing_default: bool = True,
                  rfm: RfmScope | None = None) -> tuple[str, list[Any]]:
    """The SQL condition over `customer c` (live customers only) and its parameters, with `?`
    placeholders (crm/sql.py numbers them for PostgreSQL); `rfm` is needed when `node` has an
    rfm condition (`uses_rfm`)."""
    builder = _Sql(dialect, marketing_default, [], rfm)
    body = builder.compile(node)
    return f"c.merged_into_id IS NULL AND c.erased_at IS NULL AND {body}", builder.params


EVERYONE = AllOf(())
