"""The customer card in one statement: the customer, identities, consent rows, conversation counts
and the latest conversation.

It is the API's most frequent read (and the managers' /info): one round trip to the database
instead of five. Identities and consent rows come back as JSON arrays (SQLite's
json_group_array, PostgreSQL's json_agg), the rest as columns.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from crm import sql
from crm.models import Consent
from crm.types import ConsentKind, ConversationStatus
from crm.views import (
    ConversationSummary,
    CustomerView,
    conversation_of,
    customer_of,
    identity_of,
    json_value,
)

_IDENTITY = ("id", "channel", "address", "display_name", "undeliverable_reason", "created_at",
             "last_seen_at")
_CONSENT = ("id", "kind", "channel", "granted", "source", "actor", "changed_at")
_CONVERSATION = ("id", "status", "assignee_id", "channel", "subject", "opened_at", "closed_at",
                 "first_response_due", "last_inbound_at", "last_outbound_at")


@cache
def statement(postgres: bool) -> str:
    def array(table: str, alias: str, columns: tuple[str, ...]) -> str:
        pairs = ", ".join(f"'{c}', {alias}.{c}" for c in columns)
        if postgres:
            return (f"(SELECT json_agg(json_build_object({pairs})) FROM {table} {alias} "
                    f"WHERE {alias}.customer_id = c.id)")
        return (f"(SELECT json_group_array(json_object({pairs})) FROM {table} {alias} "
                f"WHERE {alias}.customer_id = c.id)")

    counts = ", ".join(
        f"(SELECT COUNT(*) FROM conversation x WHERE x.customer_id = c.id "
        f"AND x.status = '{s.value}') AS n_{s.value}" for s in ConversationStatus)
    latest = ", ".join(f"v.{c} AS v_{c}" for c in _CONVERSATION)
    return (
        "SELECT c.id, c.name, c.language, c.timezone, c.tags, c.attributes, c.lead_source, "
        "c.created_at, c.last_seen_at, c.erased_at, c.merged_into_id, "
        f"{array('identity', 'i', _IDENTITY)} AS identities, "
        f"{array('consent', 'k', _CONSENT)} AS consents, {counts}, {latest}, "
        "m.name AS assignee_name FROM customer c "
        "LEFT JOIN conversation v ON v.id = (SELECT MAX(id) FROM conversation "
        "WHERE customer_id = c.id) LEFT JOIN manager m ON m.id = v.assignee_id "
        "WHERE c.id = ?")


def customer(row: dict[str, Any]) -> CustomerView:
    items = sorted(json_value(row["identities"]) or [], key=lambda i: i["id"])
    return customer_of(row, [identity_of({**i, "customer_id": row["id"]}) for i in items])


def consent_rows(row: dict[str, Any]) -> list[Consent]:
    return [Consent(id=r["id"], customer_id=row["id"], kind=ConsentKind(r["kind"]),
                    channel=r["channel"], granted=bool(r["granted"]), source=r["source"],
                    actor=r["actor"], changed_at=sql.as_datetime(r["changed_at"]))
            for r in json_value(row["consents"]) or []]


def summary(row: dict[str, Any]) -> ConversationSummary:
    counts = {s.value: int(row[f"n_{s.value}"] or 0) for s in ConversationStatus}
    if row["v_id"] is None:
        return ConversationSummary(counts, None, None)
    latest = conversation_of({**{c: row[f"v_{c}"] for c in _CONVERSATION},
                              "customer_id": row["id"], "customer_name": row["name"]})
    return ConversationSummary(counts, latest, row["assignee_name"])
