"""Migrations keep the data they find: run on a database that holds rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROWS_0003 = """
INSERT INTO customer (id, name, tags, attributes, marketing_opt_out, opted_out_at, created_at)
VALUES (1, 'Ann', '[]', '{}', TRUE, '2026-05-01 10:00:00+00:00', '2026-01-01 00:00:00+00:00');
INSERT INTO customer (id, name, tags, attributes, marketing_opt_out, created_at)
VALUES (2, 'Bob', '[]', '{}', FALSE, '2026-01-01 00:00:00+00:00');
INSERT INTO customer (id, name, tags, attributes, marketing_opt_out, opted_out_at, created_at)
VALUES (3, 'Cat', '[]', '{}', TRUE, '2026-06-01 10:00:00+00:00', '2026-01-01 00:00:00+00:00');
INSERT INTO identity (id, customer_id, channel, address, created_at)
VALUES (1, 1, 'sms', '+12025550143', '2026-01-01 00:00:00+00:00');
INSERT INTO audit_log (id, actor, action, customer_id, detail, created_at)
VALUES (1, 'customer', 'opt_out', 1, '{}', '2026-05-01 10:00:00+00:00');
INSERT INTO audit_log (id, actor, action, customer_id, detail, created_at)
VALUES (2, 'customer:sms', 'opt_out', 3, '{}', '2026-06-01 10:00:00+00:00');
INSERT INTO message (id, customer_id, direction, channel, external_id, text, attachments, meta,
                     author_kind, delivery_status, automated, created_at)
VALUES (1, 1, 'in', 'sms', 'k-1', 'hello', '[]', '{}', 'customer', 'received', FALSE,
        '2026-01-01 00:00:00+00:00');
"""


def upgrade_with_rows(url: str, before: str, rows: str, tables: list[str],
                      tmp: Path) -> dict[str, dict[str, list[dict[str, Any]] | None]]:
    sql = tmp / "rows.sql"
    sql.write_text(rows.strip() + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.migrate_with_data", url, before, str(sql)],
        input=" ".join(tables), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, dict[str, list[dict[str, Any]] | None]] = json.loads(
        done.stdout.strip().splitlines()[-1])
    return result


def test_consent_migration_keeps_customers_and_their_opt_out(new_db_url: Any,
                                                              tmp_path: Path) -> None:
    steps = upgrade_with_rows(new_db_url(), "0003_outbox_claim_index", ROWS_0003,
                              ["customer", "identity", "message", "consent"], tmp_path)
    out: Any = steps["head"]
    # Dropping the old column must not rebuild (and so cascade-delete from) the customer table.
    assert [c["name"] for c in out["customer"]] == ["Ann", "Bob", "Cat"]
    assert "marketing_opt_out" not in out["customer"][0]
    assert [i["address"] for i in out["identity"]] == ["+12025550143"]
    assert [m["text"] for m in out["message"]] == ["hello"]
    # The old flag meant "no marketing anywhere": it is carried over as such, with its time;
    # one that came by SMS STOP also stops order updates by SMS, as STOP does now.
    consent = sorted((c["customer_id"], c["kind"], c["channel"], bool(c["granted"]))
                     for c in out["consent"])
    assert consent == [(1, "marketing", "*", False), (3, "marketing", "*", False),
                       (3, "notifications", "sms", False)]
    assert all(c["source"] == "migration" for c in out["consent"])
    assert "2026-05-01" in str(out["consent"][0]["changed_at"])
    # Back down: the flag returns, from the consent rows; and up again, the same as before.
    down: Any = steps["down"]
    assert down["consent"] is None
    assert [bool(c["marketing_opt_out"]) for c in down["customer"]] == [True, False, True]
    again: Any = steps["again"]
    assert len(again["consent"]) == 3 and len(again["identity"]) == 1


ROWS_0004 = """
INSERT INTO customer (id, name, tags, attributes, created_at)
VALUES (1, 'Ann', '[]', '{}', '2026-01-01 00:00:00+00:00');
INSERT INTO identity (id, customer_id, channel, address, created_at)
VALUES (1, 1, 'sms', '+12025550143', '2026-01-01 00:00:00+00:00');
INSERT INTO conversation (id, customer_id, status, channel, opened_at, acknowledged)
VALUES (1, 1, 'open', 'sms', '2026-01-01 00:00:00+00:00', FALSE);
INSERT INTO message (id, customer_id, conversation_id, direction, channel, external_id, text,
                     attachments, meta, author_kind, delivery_status, automated, created_at)
VALUES (1, 1, 1, 'in', 'sms', 'k-1', 'hello', '[]', '{}', 'customer', 'received', FALSE,
        '2026-01-01 00:00:00+00:00');
INSERT INTO outbox (id, channel, address, payload, idempotency_key, state, priority, attempts,
                    due_ms, customer_id, created_at)
VALUES (1, 'sms', '+12025550143', '{}', 'k', 'sent', 0, 1, 0, 1, '2026-01-01 00:00:00+00:00');
"""


def test_api_keys_migration_keeps_every_row_of_the_tables_it_describes(
        new_db_url: Any, tmp_path: Path) -> None:
    steps = upgrade_with_rows(new_db_url(), "0004_consent", ROWS_0004,
                              ["customer", "identity", "conversation", "message", "outbox",
                               "api_key"], tmp_path)
    out: Any = steps["head"]
    # The channel columns' new description must not rebuild (and so empty) any table.
    assert [c["name"] for c in out["customer"]] == ["Ann"]
    assert [i["address"] for i in out["identity"]] == ["+12025550143"]
    assert [c["status"] for c in out["conversation"]] == ["open"]
    assert [m["text"] for m in out["message"]] == ["hello"]
    assert [o["idempotency_key"] for o in out["outbox"]] == ["k"]
    assert out["api_key"] == []


ROWS_0006 = ROWS_0004 + """
INSERT INTO consent (id, customer_id, kind, channel, granted, source, actor, changed_at)
VALUES (1, 1, 'marketing', 'sms', FALSE, 'keyword', 'customer', '2026-01-01 00:00:00+00:00');
INSERT INTO api_key (id, name, prefix, key_hash, scopes, created_by, created_at)
VALUES (1, 'shop', 'crm_abc', 'h', '["orders:write"]', 'cli', '2026-01-01 00:00:00+00:00');
"""


def test_orders_migration_adds_tables_and_keeps_every_row(new_db_url: Any,
                                                          tmp_path: Path) -> None:
    steps = upgrade_with_rows(new_db_url(), "0006_toolkit", ROWS_0006,
                              ["customer", "identity", "conversation", "message", "outbox",
                               "consent", "api_key", "customer_order", "order_event"], tmp_path)
    out: Any = steps["head"]
    assert [c["name"] for c in out["customer"]] == ["Ann"]
    assert [i["address"] for i in out["identity"]] == ["+12025550143"]
    assert [m["text"] for m in out["message"]] == ["hello"]
    assert [o["idempotency_key"] for o in out["outbox"]] == ["k"]
    assert [c["source"] for c in out["consent"]] == ["keyword"]
    assert [k["name"] for k in out["api_key"]] == ["shop"]
    assert out["customer_order"] == [] and out["order_event"] == []
    down: Any = steps["down"]
    assert down["customer_order"] is None and [c["name"] for c in down["customer"]] == ["Ann"]
    assert steps["again"]["customer_order"] == []


ROWS_0008 = ROWS_0004 + """
INSERT INTO manager (id, telegram_user_id, name, username, role, availability, capacity, channels,
                     tags, active, language, created_at)
VALUES (1, 9001, 'Bob', 'bob', 'manager', 'online', 20, '[]', '[]', TRUE, 'ru',
        '2026-01-01 00:00:00+00:00');
UPDATE conversation SET assignee_id = 1 WHERE id = 1;
UPDATE message SET author_id = 1 WHERE id = 1;
INSERT INTO task (id, kind, state, due_at, key, customer_id, conversation_id, manager_id, text,
                  payload, attempts, created_by, created_at)
VALUES (1, 'reminder', 'pending', '2026-01-02 00:00:00+00:00', 'r1', 1, 1, 1, 'call', '{}', 0,
        'manager:1', '2026-01-01 00:00:00+00:00');
"""


def test_console_migration_keeps_managers_and_everything_that_points_at_them(
        new_db_url: Any, tmp_path: Path) -> None:
    steps = upgrade_with_rows(new_db_url(), "0008_reports", ROWS_0008,
                              ["manager", "conversation", "message", "task", "staff_session",
                               "used_link", "sign_in_lock"], tmp_path)
    out: Any = steps["head"]
    # Making telegram_user_id optional rebuilds `manager` on SQLite: the assignee, the author
    # and the task's manager must still point at Bob afterwards.
    [bob] = out["manager"]
    assert (bob["name"], bob["telegram_user_id"], bob["language"]) == ("Bob", 9001, "ru")
    assert bob["email"] is None and bob["password_hash"] is None
    assert [c["assignee_id"] for c in out["conversation"]] == [1]
    assert [m["author_id"] for m in out["message"]] == [1]
    assert [t["manager_id"] for t in out["task"]] == [1]
    assert out["staff_session"] == [] and out["used_link"] == [] and out["sign_in_lock"] == []
    down: Any = steps["down"]
    assert "email" not in down["manager"][0] and down["staff_session"] is None
    assert [c["assignee_id"] for c in down["conversation"]] == [1]
    assert [t["manager_id"] for t in down["task"]] == [1]
    again: Any = steps["again"]
    assert [m["author_id"] for m in again["message"]] == [1]
    assert again["manager"][0]["telegram_user_id"] == 9001


ROWS_0009 = ROWS_0006 + """
INSERT INTO manager (id, telegram_user_id, name, role, availability, capacity, channels, tags,
                     active, created_at)
VALUES (1, 555, 'Mia', 'marketer', 'away', 20, '[]', '[]', TRUE, '2026-01-01 00:00:00+00:00');
INSERT INTO customer_order (id, number, number_key, customer_id, status, items, amount_minor,
                            currency, status_changed_at, created_at, updated_at)
VALUES (1, 'A-1', 'A-1', 1, 'paid', '[]', 4990, 'EUR', '2026-01-02 00:00:00+00:00',
        '2026-01-02 00:00:00+00:00', '2026-01-02 00:00:00+00:00');
"""


def test_campaigns_migration_adds_tables_and_keeps_every_row(new_db_url: Any,
                                                             tmp_path: Path) -> None:
    steps = upgrade_with_rows(new_db_url(), "0009_console", ROWS_0009,
                              ["customer", "identity", "conversation", "message", "outbox",
                               "consent", "manager", "customer_order", "segment", "campaign",
                               "campaign_recipient"], tmp_path)
    out: Any = steps["head"]
    assert [c["name"] for c in out["customer"]] == ["Ann"]
    assert [i["address"] for i in out["identity"]] == ["+12025550143"]
    assert [c["status"] for c in out["conversation"]] == ["open"]
    assert [m["text"] for m in out["message"]] == ["hello"]
    assert [o["idempotency_key"] for o in out["outbox"]] == ["k"]
    assert [c["source"] for c in out["consent"]] == ["keyword"]
    assert [m["name"] for m in out["manager"]] == ["Mia"]
    assert [o["number"] for o in out["customer_order"]] == ["A-1"]
    assert out["segment"] == [] and out["campaign"] == [] and out["campaign_recipient"] == []
    down: Any = steps["down"]
    assert down["campaign"] is None and down["campaign_recipient"] is None
    assert [c["name"] for c in down["customer"]] == ["Ann"]
    assert [o["number"] for o in down["customer_order"]] == ["A-1"]
    assert steps["again"]["campaign_recipient"] == []
