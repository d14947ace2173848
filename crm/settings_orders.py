"""Settings of orders and the CSV imports: `[orders]`, `[orders.csv]`,
`[customers.csv]` (crm/config.py holds them in `Settings`)."""

from __future__ import annotations

import codecs

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderStatusSettings(_Section):
    """One `[[orders.statuses]]` entry."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    # What customers read, per language ("en" is required; other languages fall back to it).
    label: dict[str, str]
    notify: bool = False  # entering it sends the customer one message
    final: bool = False  # an order in it cannot move to another status

    @field_validator("label")
    @classmethod
    def _english(cls, v: dict[str, str]) -> dict[str, str]:
        if not v.get("en", "").strip():
            raise ValueError('give at least an English label: label = { en = "Shipped", '
                             'ru = "Отправлен" }')
        return v


DEFAULT_STATUSES = (
    OrderStatusSettings(code="new", label={"en": "New", "ru": "Новый"}),
    OrderStatusSettings(code="paid", label={"en": "Paid", "ru": "Оплачен"}, notify=True),
    OrderStatusSettings(code="shipped", label={"en": "Shipped", "ru": "Отправлен"},
                        notify=True),
    OrderStatusSettings(code="delivered", label={"en": "Delivered", "ru": "Доставлен"},
                        notify=True, final=True),
    OrderStatusSettings(code="cancelled", label={"en": "Cancelled", "ru": "Отменён"},
                        notify=True, final=True),
)


class _CsvSettings(_Section):
    # "auto": UTF-8 (with or without a BOM), UTF-16 with a BOM, else `fallback_encoding`.
    encoding: str = "auto"
    fallback_encoding: str = "cp1251"
    # "auto": whichever of , ; TAB | the header line uses.
    delimiter: str = "auto"

    @field_validator("encoding", "fallback_encoding")
    @classmethod
    def _codec(cls, v: str) -> str:
        if v == "auto":
            return v
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"{v!r} is not an encoding Python knows (utf-8, cp1251, "
                             "koi8-r, …)") from None
        return v

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, v: str) -> str:
        if v != "auto" and len(v) != 1:
            raise ValueError('one character, such as "," or ";", or "auto"')
        return v


class OrdersCsvSettings(_CsvSettings):
    """Which column of the file holds what ("" : no such column)."""

    number: str = "number"
    external_number: str = "external_number"
    status: str = "status"
    email: str = "email"
    phone: str = "phone"
    telegram_id: str = "telegram_id"
    name: str = "name"
    amount: str = "amount"
    currency: str = "currency"
    placed_at: str = "placed_at"
    items: str = "items"
    note: str = "note"
    # Used where a row has no currency.
    default_currency: str = Field(default="", pattern=r"^([A-Za-z]{3})?$")
    # Dates without an offset are in this zone; "" date_format: ISO 8601 (2026-03-01 10:00).
    timezone: str = "UTC"
    date_format: str = ""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name such as UTC or Europe/Berlin") from None
        return v


class CustomersCsvSettings(_CsvSettings):
    email: str = "email"
    phone: str = "phone"
    telegram_id: str = "telegram_id"
    name: str = "name"
    language: str = "language"
    timezone: str = "timezone"
    lead_source: str = "lead_source"
    tags: str = "tags"
    tags_separator: str = Field(default=",", min_length=1, max_length=1)
    # Columns kept as the customer's attributes, under their header's name.
    attributes: list[str] = Field(default_factory=list)
    # yes/no (also true/false, 1/0, да/нет); empty: the customer said nothing. Applies to
    # every channel, recorded with the source "import".
    marketing: str = "marketing"
    notifications: str = "notifications"


class OrdersSettings(_Section):
    # The first status is the one a new order gets when none is given.
    statuses: list[OrderStatusSettings] = Field(default_factory=lambda: list(DEFAULT_STATUSES),
                                                min_length=1, max_length=50)
    # Days a status page link (/o/…) stays valid.
    link_days: int = Field(default=30, ge=1, le=3650)
    # A customer's "order NUMBER" questions per hour (per process); more are refused.
    lookups_per_hour: int = Field(default=20, ge=1, le=10_000)
    # Orders a customer's "my orders" lists, newest first.
    recent: int = Field(default=5, ge=1, le=20)
    csv: OrdersCsvSettings = OrdersCsvSettings()

    @model_validator(mode="after")
    def _unique(self) -> OrdersSettings:
        codes = [s.code for s in self.statuses]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"each status code once: {', '.join(twice)} appears twice")
        return self


class CustomersSettings(_Section):
    csv: CustomersCsvSettings = CustomersCsvSettings()
