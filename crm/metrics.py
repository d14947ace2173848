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

# Campaigns sending, paused or scheduled, and the last 20 finished.
CAMPAIGN_RECIPIENTS = Gauge("crm_campaign_recipients", "Campaign recipients by state",
                            ["campaign", "state"])
CAMPAIGN_RESULTS = Gauge("crm_campaign_results", "Campaign recipients who replied, clicked, "
                         "opted out or had delivery confirmed", ["campaign", "result"])
CAMPAIGNS = Gauge("crm_campaigns", "Campaigns by state", ["state"])

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


async def refresh_campaign_gauges() -> None:
    conn = get_connection("default")
    CAMPAIGNS.clear()
    for row in await conn.execute_query_dict(
            "SELECT state, COUNT(*) AS n FROM campaign GROUP BY state"):
        CAMPAIGNS.labels(state=row["state"]).set(row["n"])
    rows = await conn.execute_query_dict(
        "SELECT r.campaign_id, r.state, COUNT(*) AS n, COUNT(r.replied_at) AS replied, "
        "COUNT(r.clicked_at) AS clicked, COUNT(r.opted_out_at) AS opted_out, "
        "COUNT(r.delivered_at) AS delivered FROM campaign_recipient r JOIN campaign c ON "
        "c.id = r.campaign_id WHERE c.state IN ('sending', 'paused', 'scheduled') OR c.id IN "
        "(SELECT f.id FROM campaign f WHERE f.state = 'finished' ORDER BY f.finished_at DESC "
        "LIMIT 20) GROUP BY r.campaign_id, r.state")
    CAMPAIGN_RECIPIENTS.clear()
    CAMPAIGN_RESULTS.clear()
    results: dict[tuple[str, str], int] = {}
    for row in rows:
        campaign = str(row["campaign_id"])
        CAMPAIGN_RECIPIENTS.labels(campaign=campaign, state=row["state"]).set(row["n"])
        for name in ("replied", "clicked", "opted_out", "delivered"):
            results[(campaign, name)] = results.get((campaign, name), 0) + int(row[name])
    for (campaign, name), n in results.items():
        CAMPAIGN_RESULTS.labels(campaign=campaign, result=name).set(n)


async def render() -> bytes:
    await refresh_outbox_gauges()
    await refresh_campaign_gauges()
    return generate_latest()


def short_reason(error: str | None) -> str:
    """A low-cardinality label from an error text (the first words, no ids or addresses)."""
    if not error:
        return "unknown"
    head = error.split(":", 1)[0].strip().lower()
    return "".join(c if c.isalnum() or c in " _-" else "" for c in head)[:40] or "unknown"
