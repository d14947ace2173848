"""Segment filters as data: parsed with errors that name the key, compiled to SQL for SQLite and
PostgreSQL without a database."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crm.campaigns.filters import (
    AllOf,
    AnyOf,
    Attribute,
    Column,
    Consented,
    Moment,
    NotOf,
    OrderCount,
    Rfm,
    RfmScope,
    Spent,
    Tags,
    compile_where,
    parse,
)
from crm.errors import InvalidField
from crm.reports.money import OrderRules
from crm.reports.rfm import Segment

LIVE = "c.merged_into_id IS NULL AND c.erased_at IS NULL AND "

TOML = """
[filter]
language = ["RU", "uk"]
any = [{ tag = "VIP" }, { spent_min = "100.50", currency = "eur" }]
not = { consent = "sms" }
last_inbound_after = 2026-01-01
attribute = "plan"
equals = "gold"
"""


def test_a_toml_table_becomes_one_tree_in_the_order_written() -> None:
    tree = parse(tomllib.loads(TOML)["filter"])
    assert tree == AllOf((
        AnyOf((Tags(("vip",)), Spent(10050, None, "EUR"))),
        NotOf(Consented(("sms",))),
        Attribute("plan", "equals", "gold"),
        Column("language", ("ru", "uk")),
        Moment("last_seen_at", True, datetime(2026, 1, 1, tzinfo=UTC)),
    ))


def test_an_empty_filter_matches_every_live_customer() -> None:
    for dialect in ("sqlite", "postgres"):
        where, params = compile_where(parse({}), dialect)  # type: ignore[arg-type]
        assert where == LIVE + "TRUE" and params == []


@pytest.mark.parametrize(("data", "field", "says"), [
    ({"tag": 5}, "filter.tag", "not a text"),
    ({"reachable": "fax"}, "filter.reachable", "not a channel"),
    ({"any": []}, "filter.any", "non-empty list"),
    ({"any": [{"language": "ru"}, {"colour": "red"}]}, "filter.any[1].colour",
     "unknown condition"),
    ({"attribute": "plan"}, "filter.attribute", "exactly one of"),
    ({"attribute": "bad name!", "equals": 1}, "filter.attribute", "not an attribute name"),
    ({"attribute": "age", "gt": "ten"}, "filter.gt", "not a number"),
    ({"equals": 1}, "filter.equals", "goes with attribute"),
    ({"orders_min": -1}, "filter.orders_min", "whole number"),
    ({"spent_min": "1.234", "currency": "EUR"}, "filter.spent_min", "decimal"),
    ({"currency": "EUR"}, "filter.currency", "goes with spent_min"),
    ({"last_inbound_after": "yesterday"}, "filter.last_inbound_after", "not a date"),
    ({"not": [1]}, "filter.not", "table of conditions"),
    ({"rfm": "vip"}, "filter.rfm", "not an RFM segment: use champions, loyal"),
    ({"any": [{"rfm": ["loyal", 3]}]}, "filter.any[0].rfm", "not a text"),
    ({"rfm_days": 90}, "filter.rfm_days", "goes with rfm"),
    ({"rfm": "loyal", "rfm_days": 0}, "filter.rfm_days", "from 1 to 3650"),
    ({"rfm": "loyal", "rfm_days": "90"}, "filter.rfm_days", "whole number of days"),
])
def test_bad_filters_are_refused_naming_the_key(data: dict[str, Any], field: str,
                                                says: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse(data)
    assert caught.value.field == field
    assert says in caught.value.reason


def test_sqlite_and_postgres_get_their_own_json_and_the_same_parameters_order() -> None:
    tree = parse({"tag": "vip", "attribute": "age", "gte": 18})
    lite, lite_params = compile_where(tree, "sqlite")
    pg, pg_params = compile_where(tree, "postgres")
    assert "json_each(c.tags)" in lite and "json_extract(c.attributes, ?)" in lite
    assert "c.tags::jsonb @> ?::jsonb" in pg and "jsonb_typeof" in pg
    assert lite_params == ['$."age"', '$."age"', 18.0, "vip"]
    assert pg_params == ["age", "age", 18.0, json.dumps(["vip"])]
    for where, params in ((lite, lite_params), (pg, pg_params)):
        assert where.count("?") == len(params)


def test_consent_follows_the_newer_word_and_the_configured_default() -> None:
    granted, params = compile_where(Consented(("email", "sms")), "sqlite")
    assert granted.count("g.channel IN (?, '*')") == 2 and params == ["email", "sms"]
    assert "ORDER BY g.changed_at DESC" in granted and ", TRUE) = TRUE" in granted
    opt_in, _ = compile_where(Consented(("email",)), "postgres", marketing_default=False)
    assert ", FALSE) = TRUE" in opt_in


def test_orders_are_counted_and_summed_in_sql() -> None:
    where, params = compile_where(AllOf((OrderCount(2, None), Spent(None, 5000, None))),
                                  "postgres")
    assert "(SELECT COUNT(*) FROM customer_order o WHERE o.customer_id = c.id) >= ?" in where
    assert "o.status <> 'cancelled'" in where and "SUM(o.amount_minor)" in where
    assert params == [2, 5000]


def test_values_never_reach_the_sql_text() -> None:
    hostile = "x' OR 1=1 --"
    for dialect in ("sqlite", "postgres"):
        where, params = compile_where(parse({"lead_source": hostile, "tag": hostile,
                                             "attribute": "plan", "in": [hostile, 2]}),
                                      dialect)  # type: ignore[arg-type]
        assert hostile not in where and hostile in params


RFM_TOML = """
[filter]
rfm = ["Champions", "at risk", "at_risk"]
any = [{ tag = "vip" }, { rfm = "hibernating", rfm_days = 90 }]
"""


def test_rfm_segments_are_named_as_people_write_them() -> None:
    tree = parse(tomllib.loads(RFM_TOML)["filter"])
    assert tree == AllOf((
        AnyOf((Tags(("vip",)), Rfm((Segment.HIBERNATING,), 90))),
        Rfm((Segment.CHAMPIONS, Segment.AT_RISK), 365),
    ))


def test_rfm_embeds_the_reports_scoring_once_per_condition() -> None:
    tree = parse({"rfm": ["loyal", "champions"], "not": {"tag": "x"}})
    with pytest.raises(ValueError, match="RfmScope"):
        compile_where(tree, "sqlite")
    now = datetime(2026, 3, 31, 12, tzinfo=UTC)
    scope = RfmScope(OrderRules(("cancelled",), "EUR"), now, ZoneInfo("Europe/Moscow"))
    for dialect in ("sqlite", "postgres"):
        where, params = compile_where(tree, dialect, rfm=scope)  # type: ignore[arg-type]
        assert where.count("c.id IN (SELECT s.id FROM (") == 1
        assert where.count("RANK() OVER (ORDER BY last_at)") == 1
        assert where.count("?") == len(params)
        # The last 365 whole days in the team's zone and today so far, as the customers report.
        start = datetime(2025, 3, 30, 21, tzinfo=UTC)  # 31 March 2025, 00:00 in Moscow
        assert params[-4:] == [start, now, "loyal", "champions"]
        assert "cancelled" in params and params.count("EUR") == 2
