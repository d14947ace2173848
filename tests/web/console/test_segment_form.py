"""The segment builder's form as data (pure): conditions and groups to the filters crm reads,
a saved segment back into the builder, its buttons, and each problem named by its condition."""

from __future__ import annotations

from typing import Any

import pytest

from crm.campaigns.filters import AllOf, AnyOf, NotOf, parse
from web.console.segment_form import Builder, Group, Row, act, from_filters, from_form, to_filters

README_EXAMPLE = {
    "language": "ru", "reachable": ["telegram", "email", "sms"],
    "any": [{"tag": "vip"}, {"spent_min": 500, "currency": "EUR"},
            {"attribute": "plan", "equals": "gold"}],
    "not": {"last_order_status": "cancelled"}}


def test_a_posted_form_becomes_groups_of_conditions() -> None:
    builder = from_form({
        "match": "any", "gm0": "all", "gm1": "any",
        "r0.g": "0", "r0.kind": "tag", "r0.value": "vip, club",
        "r1.g": "0", "r1.kind": "reachable", "r1.value": "telegram", "r1.not": "on",
        "r2.g": "1", "r2.kind": "attribute", "r2.key": "plan", "r2.op": "gte",
        "r2.value": "2.5",
        "r3.g": "1", "r3.kind": "spent_min", "r3.value": "100", "r3.currency": "eur",
        "r4.g": "9", "r4.kind": "DROP TABLE", "r4.value": "x"})  # unknown: a tag, group 0
    assert builder.match == "any" and [g.match for g in builder.groups] == ["all", "any"]
    filters, problems = to_filters(builder)
    assert problems == {}
    assert filters == {"any": [
        {"all": [{"tag": ["vip", "club"]}, {"not": {"reachable": "telegram"}},
                 {"tag": "x"}]},
        {"any": [{"attribute": "plan", "gte": 2.5}, {"spent_min": "100",
                                                    "currency": "EUR"}]}]}
    parse(filters)  # crm reads it


def test_problems_name_their_condition_and_unfinished_ones_are_left_out() -> None:
    builder = Builder("all", [Group("all", [Row("language", "ru"), Row("orders_min", "-2"),
                                            Row("tag", "  ")]),
                              Group("any", [Row("consent", "pigeon"), Row("tag", "vip")])])
    filters, problems = to_filters(builder)
    assert filters == {"all": [{"language": "ru"}, {"tag": "vip"}]}
    assert set(problems) == {2, 4}
    assert problems[2].startswith("condition 2.orders_min: ")
    assert "'pigeon' is not a channel" in problems[4]
    assert to_filters(Builder()) == ({}, {})  # nothing chosen: every customer


@pytest.mark.parametrize("filters", [
    README_EXAMPLE,
    {"tag": "vip"},
    {"any": [{"tag": "vip"}, {"language": "en"}]},
    {"any": [{"all": [{"tag": "a"}, {"tag": "b"}]}, {"language": "en"}]},
    {"all": [{"any": [{"tag": "a"}, {"tag": "b"}]}, {"any": [{"language": "en"},
                                                            {"language": "ru"}]}]},
    {"orders_min": 2, "spent_max": 50, "first_seen_after": "2026-01-01",
     "attribute": "vip", "exists": True},
])
def test_a_saved_segment_comes_back_as_it_matches(filters: dict[str, Any]) -> None:
    builder = from_filters(filters)
    assert builder is not None
    again, problems = to_filters(builder)
    assert problems == {}
    assert _normal(parse(again)) == _normal(parse(filters))


def _normal(node: Any) -> Any:
    """The same conditions combined the same way read the same: the builder may order and
    nest them differently from a hand-written file (and within all, all again is all)."""
    if isinstance(node, AllOf | AnyOf):
        kind = type(node)
        flat: list[Any] = []
        for item in (_normal(i) for i in node.items):
            flat += list(item[1]) if isinstance(item, tuple) and item[0] == kind.__name__ \
                else [item]
        return (kind.__name__, tuple(sorted(flat, key=repr)))
    if isinstance(node, NotOf):
        return ("NotOf", _normal(node.item))
    return node


def test_what_the_builder_cannot_show_is_said() -> None:
    assert from_filters({"not": {"any": [{"tag": "a"}, {"tag": "b"}]}}) is None
    assert from_filters({"last_inbound_after": "2026-01-01T10:00:00+00:00"}) is None
    three_deep = {"any": [{"any": [{"all": [{"tag": "a"}, {"tag": "b"}]}, {"tag": "c"}]},
                          {"tag": "d"}]}
    assert from_filters(three_deep) is None


def test_the_buttons_add_and_remove_conditions_and_groups() -> None:
    builder = Builder()
    act(builder, "add-row:0")
    act(builder, "add-group")
    assert [len(g.rows) for g in builder.groups] == [2, 1]
    act(builder, "remove-row:3")  # the first of the second group: the group goes with it
    assert [len(g.rows) for g in builder.groups] == [2]
    act(builder, "remove-row:1")
    act(builder, "remove-row:1")
    assert [len(g.rows) for g in builder.groups] == [1]  # never empty: one to fill in
    act(builder, "add-row:7")  # no such group: nothing
    assert len(builder.numbered()) == 1


def test_an_empty_form_has_one_condition_to_fill_in() -> None:
    assert [len(g.rows) for g in from_form({}).groups] == [1]
    assert [len(g.rows) for g in from_form({"gm0": "any", "gm1": "all", "r1.g": "1",
                                            "r1.kind": "tag"}).groups] == [1]


def test_an_rfm_condition_is_built_read_and_read_back() -> None:
    builder = from_form({"match": "all", "gm0": "all", "r0.g": "0", "r0.kind": "rfm",
                         "r0.value": "champions, at risk"})
    filters, problems = to_filters(builder)
    assert problems == {} and filters == {"rfm": ["champions", "at risk"]}
    parse(filters)  # crm reads it
    back = from_filters(filters)
    assert back is not None
    [row] = back.groups[0].rows
    assert (row.kind, row.value) == ("rfm", "champions, at risk")
    _, bad = to_filters(from_form({"gm0": "all", "r0.g": "0", "r0.kind": "rfm",
                                   "r0.value": "royalty"}))
    assert list(bad) == [1] and "royalty" in bad[1]
