"""What every body of the API shares: strict requests, outputs read from crm/views.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from crm.types import Channel

# The channels a customer can be written to or reached on (not the test or webhook channels).
CustomerChannel = Literal["telegram", "email", "sms", "webchat"]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Text = Annotated[str, Field(min_length=1, max_length=10_000)]


class Request(BaseModel):
    """A request body: unknown fields and wrong types are errors, never silently fixed."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Query parameters: strings from the URL, converted (limit=50), unknown ones refused."""

    model_config = ConfigDict(extra="forbid")


class PageQuery(Query):
    limit: int | None = Field(default=None, ge=1, le=1000,
                              description="items per page (default and maximum: [api] config)")
    cursor: str | None = Field(default=None, max_length=500,
                               description="next_cursor of the previous page, unchanged")


class Out(BaseModel):
    """A response body, read from the query service's values."""

    model_config = ConfigDict(from_attributes=True)


def channel(value: str | None) -> Channel | None:
    return Channel(value) if value is not None else None


class Empty(Out):
    """Nothing to say beyond the status."""

    ok: bool = True
