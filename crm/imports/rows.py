"""A CSV row as the values to store, or the reason it cannot be: pure functions, no I/O.

Addresses are normalised as typed (crm/identity.py `normalize_typed_address`: an SMS address
must be a phone number), each distinct one once per import (`Normaliser` remembers them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from crm.errors import InvalidAddress
from crm.identity import normalize_typed_address
from crm.imports.reader import BadRow, CsvFile
from crm.orders.numbers import InvalidOrder, check_currency, check_number, number_key, to_minor
from crm.orders.statuses import Statuses, UnknownStatus
from crm.settings_orders import CustomersCsvSettings, OrdersCsvSettings
from crm.types import Channel

ADDRESS_FIELDS = (("email", Channel.EMAIL), ("phone", Channel.SMS),
                  ("telegram_id", Channel.TELEGRAM))
_QUANTITY = re.compile(r"^(.*?)\s*[x×*]\s*(\d{1,6})$", re.IGNORECASE)
_YES = {"yes", "y", "true", "1", "да", "д", "granted", "opt-in", "optin"}
_NO = {"no", "n", "false", "0", "нет", "н", "denied", "opt-out", "optout"}
_MAX_TEXT = 2000


class RowError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class Columns:
    """Where each configured field is in the file's rows."""

    def __init__(self, f: CsvFile, mapping: dict[str, str], required: Sequence[str]) -> None:
        self.index: dict[str, int] = {}
        for name, header in mapping.items():
            if not header:
                continue
            at = f.column(header)
            if at is not None:
                self.index[name] = at
        missing = [name for name in required if name not in self.index]
        if missing:
            from crm.imports.reader import ImportFileError

            raise ImportFileError(
                f"{f.path}: no column {', '.join(repr(mapping[m] or m) for m in missing)} "
                f"(the config's {', '.join(missing)}); the file's columns are: "
                f"{', '.join(f.header)}")

    def get(self, row: Sequence[str], name: str) -> str:
        at = self.index.get(name)
        return row[at].strip() if at is not None and at < len(row) else ""

    def values(self, row: Sequence[str]) -> dict[str, str]:
        """Every configured field of the row ("" where the row or the file has none)."""
        width = len(row)
        return {name: row[at].strip() if at < width else ""
                for name, at in self.index.items()}


class Normaliser:
    def __init__(self, region: str) -> None:
        self.region = region
        self._seen: dict[tuple[Channel, str], str] = {}

    def address(self, channel: Channel, raw: str, field: str) -> tuple[Channel, str]:
        key = (channel, raw)
        found = self._seen.get(key)
        if found is None:
            try:
                found = normalize_typed_address(channel, raw, self.region)
            except InvalidAddress as e:
                raise RowError(field, str(e)) from None
            self._seen[key] = found
        return channel, found

    def identities(self, cols: Columns, row: Sequence[str]) -> tuple[tuple[Channel, str], ...]:
        out = []
        for field, channel in ADDRESS_FIELDS:
            raw = cols.get(row, field)
            if raw:
                out.append(self.address(channel, raw, field))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class OrderRow:
    line: int
    number: str
    key: str
    status: str | None
    identities: tuple[tuple[Channel, str], ...]
    name: str | None
    external_number: str | None
    amount_minor: int | None  # when the row (or default_currency) gives the currency
    amount_text: str | None  # otherwise: read in the stored order's currency when written
    currency: str | None
    placed_at: datetime | None
    items: list[dict[str, Any]] | None
    note: str


class OrderRows:
    def __init__(self, f: CsvFile, settings: OrdersCsvSettings, statuses: Statuses,
                 region: str) -> None:
        mapping = {k: getattr(settings, k) for k in (
            "number", "external_number", "status", "email", "phone", "telegram_id", "name",
            "amount", "currency", "placed_at", "items", "note")}
        self.cols = Columns(f, mapping, ["number"])
        self.settings = settings
        self.statuses = statuses
        self.zone: tzinfo = ZoneInfo(settings.timezone)
        self.addresses = Normaliser(region)

    def parse(self, line: int, row: Sequence[str]) -> OrderRow | BadRow:
        try:
            return self._parse(line, row)
        except RowError as e:
            return BadRow(line, e.field, e.reason)

    def _parse(self, line: int, row: Sequence[str]) -> OrderRow:
        v = self.cols.values(row)
        get = v.get
        raw_number = get("number", "")
        if not raw_number:
            raise RowError("number", "empty: every row needs the order's number")
        try:
            number = check_number(raw_number)
            currency = get("currency") or self.settings.default_currency or None
            currency = check_currency(currency) if currency else None
            amount = get("amount") or None
            minor = to_minor(amount, currency) if amount and currency else None
        except InvalidOrder as e:
            raise RowError(e.field, e.reason) from None
        status = get("status") or None
        if status is not None:
            try:
                status = self.statuses.get(status).code
            except UnknownStatus as e:
                raise RowError("status", str(e)) from None
        identities = []
        for field, channel in ADDRESS_FIELDS:
            raw = get(field)
            if raw:
                identities.append(self.addresses.address(channel, raw, field))
        return OrderRow(
            line=line, number=number, key=number_key(number), status=status,
            identities=tuple(identities), name=(get("name") or "")[:200] or None,
            external_number=(get("external_number") or "")[:100] or None,
            amount_minor=minor, amount_text=amount if amount and not currency else None,
            currency=currency,
            placed_at=self._date(get("placed_at") or ""), items=_items(get("items") or ""),
            note=(get("note") or "")[:_MAX_TEXT])

    def _date(self, text: str) -> datetime | None:
        if not text:
            return None
        try:
            # Naive on purpose: a time without an offset is in [orders.csv] timezone (below).
            fmt = self.settings.date_format
            moment = datetime.strptime(text, fmt) if fmt \
                else datetime.fromisoformat(text)  # noqa: DTZ007
        except ValueError:
            want = self.settings.date_format or "ISO 8601, e.g. 2026-03-01 10:00"
            raise RowError("placed_at", f"{text!r} is not a date ({want})") from None
        return moment.replace(tzinfo=self.zone) if moment.tzinfo is None else moment


def _items(text: str) -> list[dict[str, Any]] | None:
    """A JSON list of items, or "Mug x2; Plate" as plain text."""
    if not text:
        return None
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError as e:
            raise RowError("items", f"not valid JSON: {e}") from None
        if not isinstance(items, list) or not all(
                isinstance(i, dict) and str(i.get("name") or "").strip() for i in items):
            raise RowError("items", 'a JSON list of objects each with a "name"')
        return items
    out: list[dict[str, Any]] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        m = _QUANTITY.match(part) if part[-1:].isdigit() else None
        out.append({"name": m.group(1)[:200], "quantity": int(m.group(2))} if m and m.group(1)
                   else {"name": part[:200], "quantity": 1})
    return out


@dataclass(frozen=True, slots=True)
class CustomerRow:
    line: int
    identities: tuple[tuple[Channel, str], ...]
    fields: dict[str, Any]  # name, language, timezone, lead_source (only those given)
    tags: list[str]
    attributes: dict[str, str]
    marketing: bool | None
    notifications: bool | None


class CustomerRows:
    def __init__(self, f: CsvFile, settings: CustomersCsvSettings, region: str) -> None:
        mapping = {k: getattr(settings, k) for k in (
            "email", "phone", "telegram_id", "name", "language", "timezone", "lead_source",
            "tags", "marketing", "notifications")}
        mapping.update({f"attr:{a}": a for a in settings.attributes})
        self.cols = Columns(f, mapping, [])
        if not any(k in self.cols.index for k, _ in ADDRESS_FIELDS):
            from crm.imports.reader import ImportFileError

            raise ImportFileError(f"{f.path}: no address column: the config's [customers.csv] "
                                  "email, phone or telegram_id must name one of the file's "
                                  f"columns ({', '.join(f.header)})")
        self.settings = settings
        self.addresses = Normaliser(region)

    def parse(self, line: int, row: Sequence[str]) -> CustomerRow | BadRow:
        try:
            return self._parse(line, row)
        except RowError as e:
            return BadRow(line, e.field, e.reason)

    def _parse(self, line: int, row: Sequence[str]) -> CustomerRow:
        get = self.cols.get
        identities = self.addresses.identities(self.cols, row)
        if not identities:
            raise RowError("email", "no email, phone or telegram_id: a customer needs one")
        fields: dict[str, Any] = {}
        if get(row, "name"):
            fields["name"] = get(row, "name")[:200]
        language = get(row, "language").lower()
        if language:
            if not re.fullmatch(r"[a-z]{2,3}(-[a-z]+)?", language):
                raise RowError("language", f"{language!r} is not a language code such as en")
            fields["language"] = language.split("-")[0]
        zone = get(row, "timezone")
        if zone:
            try:
                ZoneInfo(zone)
            except (ValueError, KeyError):
                raise RowError("timezone", f"{zone!r} is not a time zone such as "
                                           "Europe/Berlin") from None
            fields["timezone"] = zone
        if get(row, "lead_source"):
            fields["lead_source"] = get(row, "lead_source")[:200]
        tags = sorted({t.strip().lower()[:64] for t in get(row, "tags").split(
            self.settings.tags_separator) if t.strip()})
        attributes = {a: get(row, f"attr:{a}")[:_MAX_TEXT] for a in self.settings.attributes
                      if get(row, f"attr:{a}")}
        return CustomerRow(line, identities, fields, tags, attributes,
                           _consent(get(row, "marketing"), "marketing"),
                           _consent(get(row, "notifications"), "notifications"))


def _consent(text: str, field: str) -> bool | None:
    value = text.strip().lower()
    if not value:
        return None
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise RowError(field, f"{text!r}: write yes or no (or leave it empty)")
