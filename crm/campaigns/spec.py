"""What a marketer writes for a campaign (a TOML file, an API body, the bot's wizard), checked.

    name = "Spring sale"
    segment = "ru-vip"                      # a saved segment, by name
    channels = ["telegram", "email", "sms"] # the order of preference
    marketer = 123456789                    # their Telegram id (optional): test sends, notices
    [schedule]
    at = 2026-04-01T10:00:00                # or "2026-04-01 10:00"; none: when scheduled
    timezone = "Europe/Berlin"              # of `at` when it has no offset
    quiet_hours = "21:00-09:00"             # in each customer's zone; "" for none
    [telegram]                              # one variant: content per channel at the top…
    text = "<b>Hello {{ customer.first_name or 'there' }}</b>, …"
    image = "banner.jpg"                    # a file (optional)
    buttons = [{ text = "Shop", url = "https://shop.example/sale" }]
    [email]
    subject = "…"
    text = "…"
    html = "<p>…</p>"                       # optional
    [sms]
    text = "…"

or, for an A/B test, `[[variants]]` (2 or 3, each with `name` and its own channel tables) and
`[ab] test_share = 0.2, metric = "reply_rate" | "click_rate", wait = "4h"`.

`parse_spec` returns a `CampaignSpec` or raises InvalidField naming the field
(`variants[1].email.subject`). Templates are checked by crm/campaigns/render.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from crm.errors import InvalidField
from crm.settings_campaigns import check_zone, parse_duration, parse_quiet_hours

ChannelName = Literal["telegram", "email", "sms"]
VARIANT_NAMES = ("A", "B", "C")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Button(_Spec):
    text: str = Field(min_length=1, max_length=64)
    url: str = Field(pattern=r"^https?://\S+$", max_length=1000)


class TelegramContent(_Spec):
    """Telegram's HTML (<b>, <i>, <a href>…); an optional image (a file); link buttons."""

    text: str = Field(min_length=1, max_length=4000)
    image: str | None = Field(default=None, max_length=500,
                              description="a file's path when written; stored on creation")
    image_file: dict[str, Any] | None = None  # the stored file (crm/files.py), set for you
    buttons: list[Button] = Field(default_factory=list, max_length=8)


class EmailContent(_Spec):
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=100_000)
    html: str | None = Field(default=None, max_length=500_000)


class SmsContent(_Spec):
    text: str = Field(min_length=1, max_length=1600)


class Variant(_Spec):
    name: str = Field(default="A", pattern=r"^[A-C]$")
    telegram: TelegramContent | None = None
    email: EmailContent | None = None
    sms: SmsContent | None = None

    def content(self, channel: str) -> TelegramContent | EmailContent | SmsContent | None:
        return getattr(self, channel, None)


class Schedule(_Spec):
    at: datetime | None = None
    timezone: str = "UTC"
    # None: `[campaigns] quiet_hours`; "": none.
    quiet_hours: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return check_zone(v)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: str | None) -> str | None:
        if v is not None:
            parse_quiet_hours(v)
        return v

    def start(self) -> datetime | None:
        if self.at is None:
            return None
        return self.at if self.at.tzinfo else self.at.replace(tzinfo=ZoneInfo(self.timezone))


class AbTest(_Spec):
    test_share: float = Field(default=0.2, ge=0.01, le=0.9,
                              description="the share of recipients in the test group")
    metric: Literal["reply_rate", "click_rate"] = "reply_rate"
    wait: str = "4h"

    @field_validator("wait")
    @classmethod
    def _wait(cls, v: str) -> str:
        parse_duration(v)
        return v

    @property
    def wait_delta(self) -> timedelta:
        return parse_duration(self.wait)


class CampaignSpec(_Spec):
    name: str = Field(min_length=1, max_length=200)
    segment: str = Field(min_length=1, max_length=64)
    channels: Annotated[list[ChannelName], Field(min_length=1, max_length=3)]
    variants: Annotated[list[Variant], Field(min_length=1, max_length=3)]
    ab: AbTest | None = None
    schedule: Schedule = Schedule()
    marketer: int | None = Field(default=None, ge=1, description="their Telegram user id")
    # Pause when more than this share of the recent sends fail; None: [campaigns] default.
    error_threshold: float | None = Field(default=None, gt=0, le=1)
    # Links in the texts are redirected through /l/ to count clicks.
    track_links: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSpec:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channels: each channel once")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variants: each variant needs its own name (A, B, C)")
        if len(self.variants) > 1 and self.ab is None:
            raise ValueError("ab: an A/B test needs [ab] (test_share, metric, wait)")
        if len(self.variants) == 1 and self.ab is not None:
            raise ValueError("ab: an A/B test needs 2 or 3 [[variants]]")
        for i, variant in enumerate(self.variants):
            for channel in self.channels:
                if variant.content(channel) is None:
                    raise ValueError(f"variants[{i}].{channel}: the campaign goes by {channel}"
                                     f", so variant {variant.name} needs [{channel}] content")
        return self

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def parse_spec(raw: dict[str, Any]) -> CampaignSpec:
    """A campaign from what was written; the channel tables at the top are variant A."""
    data = dict(raw)
    top = {c: data.pop(c) for c in ("telegram", "email", "sms") if c in data}
    if top:
        if "variants" in data:
            raise InvalidField("variants", "write the content either at the top ([telegram], "
                                           "[email], [sms]) or in [[variants]], not both")
        data["variants"] = [{"name": "A", **top}]
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as e:
        error = e.errors()[0]
        where = ".".join(_part(p) for p in error["loc"]).replace(".[", "[")
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field (check the spelling)"
        elif error["type"] == "missing":
            message = "required"
        field, _, rest = message.partition(": ")
        if not where and rest and " " not in field:  # a model check naming its own field
            where, message = field, rest
        raise InvalidField(where or "campaign", message) from None


def _part(p: object) -> str:
    return f"[{p}]" if isinstance(p, int) else str(p)
