"""SQL pieces the reports share, written once for SQLite and PostgreSQL.

Percentiles use window functions (ROW_NUMBER and COUNT over the group) and interpolate
between the two nearest ranks, as PostgreSQL's percentile_cont does (SQLite has none): with n
values sorted v1…vn, the p-quantile sits at h = (n−1)·p + 1 and is v⌊h⌋ + (h−⌊h⌋)(v⌊h⌋+1 − v⌊h⌋).
p is a fraction a/b so the position is exact integer arithmetic on both databases.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise.backends.base.client import BaseDBAsyncClient

from crm import sql


class Dimension(StrEnum):
    """What a report's rows can be grouped by (`--by`)."""

    MANAGER = "manager"
    CHANNEL = "channel"
    TAG = "tag"
    SOURCE = "source"


def quantile(rank: str, n: str, value: str, a: int, b: int) -> str:
    """The a/b-quantile of `value` over a group, from its `rank` (1…n) and size `n`."""
    k = f"(({n} - 1) * {a} / {b})"
    frac = f"((({n} - 1) * {a}) % {b}) * 1.0 / {b}"
    return (f"SUM(CASE WHEN {rank} = {k} + 1 THEN {value} * (1.0 - {frac}) "
            f"WHEN {rank} = {k} + 2 THEN {value} * ({frac}) ELSE 0 END)")


def epoch(conn: BaseDBAsyncClient, column: str) -> str:
    """Seconds since 1970 of a timestamp column."""
    if sql.is_postgres(conn):
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def source(customer: str) -> str:
    """A customer's lead source: the deep link's payload (or an import's column), else the
    channel they first reached us on (their oldest address), else ''."""
    return (f"COALESCE({customer}.lead_source, (SELECT i.channel FROM identity i WHERE "
            f"i.customer_id = {customer}.id ORDER BY i.id LIMIT 1), '')")


def tag_join(conn: BaseDBAsyncClient, customer: str) -> str:
    """One row per tag of the customer (a customer without tags: one row, tag NULL)."""
    if sql.is_postgres(conn):
        return (f" LEFT JOIN LATERAL jsonb_array_elements_text(CAST({customer}.tags AS jsonb)) "
                "AS tg(value) ON TRUE")
    return f" LEFT JOIN json_each({customer}.tags) AS tg ON 1 = 1"


def key(value: object) -> str:
    """A group's key as text: a manager's id, a channel, a tag, a source ('' for none)."""
    return "" if value is None else str(value)


def group(conn: BaseDBAsyncClient, by: Dimension | None, *, manager: str, channel: str,
          customer_id: str) -> tuple[str, str]:
    """(the group's SQL expression, the joins it needs) for rows with a manager column, a
    channel column and a customer id column."""
    if by is None:
        return "''", ""
    if by is Dimension.MANAGER:
        return manager, ""  # an id (or NULL): `key` makes it text
    if by is Dimension.CHANNEL:
        return channel, ""
    joins = f" JOIN customer cu ON cu.id = {customer_id}"
    if by is Dimension.SOURCE:
        return source("cu"), joins
    return "COALESCE(tg.value, '')", joins + tag_join(conn, "cu")
