"""Prometheus metrics of the CRM. Gauges that come from the database are refreshed on scrape."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from tortoise.connection import get_connection

from crm.clock import now_ms

MESSAGES_IN = Counter("crm_messages_in", "Inbound messages stored", ["channel"])
MESSAGES_OUT = Counter("crm_messages_out", "Outbound messages sent", ["channel"])
SEND_ERRORS = Counter("crm_send_errors", "Failed send attempts", ["channel", "kind", "reason"])
OUTBOX_DEPTH = Gauge("crm_outbox_depth", "Outbox rows waiting to be sent", ["channel", "state"])
# Customers' "order NUMBER" questions: found, not_found (someone else's or none), refused (over
# [orders] lookups_per_hour): a rise of not_found or refused is someone probing numbers.
ORDER_LOOKUPS = Counter("crm_order_lookups", "Customers' order lookups by outcome", ["outcome"])
OUTBOX_AGE = Gauge("crm_outbox_oldest_age_seconds", "Age of the oldest unsent outbox row",
                   ["channel"])

__all__ = ["CONTENT_TYPE_LATEST", "render"]


async def refresh_outbox_gauges() -> None:
    rows = await get_connection("default").execute_query_dict(
        "SELECT channel, state, COUNT(*) AS n, MIN(due_ms) AS oldest FROM outbox "
        "WHERE state IN ('queued', 'sending') GROUP BY channel, state"
    )
    OUTBOX_DEPTH.clear()
    OUTBOX_AGE.clear()
    now = now_ms()
    oldest: dict[str, int] = {}
    for row in rows:
        OUTBOX_DEPTH.labels(channel=row["channel"], state=row["state"]).set(row["n"])
        oldest[row["channel"]] = min(oldest.get(row["channel"], now), int(row["oldest"]))
    for channel, due in oldest.items():
        OUTBOX_AGE.labels(channel=channel).set(max(0.0, (now - due) / 1000))


async def render() -> bytes:
    await refresh_outbox_gauges()
    return generate_latest()


def short_reason(error: str | None) -> str:
    """A low-cardinality label from an error text (the first words, no ids or addresses)."""
    if not error:
        return "unknown"
    head = error.split(":", 1)[0].strip().lower()
    return "".join(c if c.isalnum() or c in " _-" else "" for c in head)[:40] or "unknown"
