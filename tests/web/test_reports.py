"""GET /api/v1/reports/{name} and its rows: JSON figures, scope reports:read, problems."""

from __future__ import annotations

from crm.apikeys import Scope
from tests.support.reports_data import seed
from tests.web.conftest import Api
from tests.web.test_auth import is_problem


async def test_a_report_and_the_rows_behind_it(api: Api) -> None:
    await seed()
    got = await api.get("/api/v1/reports/overview",
                        params={"from": "2026-03-01", "to": "2026-03-31"})
    assert got.status == 200, got.text
    f = got.body["figures"]
    assert f["first_response_median"]["value"] == 120
    assert f["first_response_median"]["previous"] == 240
    assert f["csat"]["value"] == 0.5 and got.body["no_data"] is False
    assert got.body["period"]["from"].startswith("2026-03-01")
    team = await api.get("/api/v1/reports/team", params={"period": "2026-03", "by": "channel"})
    groups = {r["group"] for r in team.body["tables"]["groups"]["rows"]}
    assert groups == {"email", "sms", "telegram"} and team.body["by"] == "channel"
    rows = await api.get("/api/v1/reports/team/rows",
                         params={"period": "2026-03", "group": "Olga", "limit": "2"})
    assert rows.status == 200 and rows.body["total"] == 5
    assert len(rows.body["rows"]) == 2 and rows.body["next_offset"] == 2
    assert "business_seconds" in rows.body["columns"]
    rest = await api.get("/api/v1/reports/team/rows",
                         params={"period": "2026-03", "group": "Olga", "offset": "2"})
    assert len(rest.body["rows"]) == 3 and rest.body["next_offset"] is None
    customers = await api.get("/api/v1/reports/customers",
                              params={"from": "2026-01-01", "to": "2026-03-31"})
    assert customers.body["figures"]["share_for_80"]["value"] == 0.5
    assert customers.body["currency"] == "EUR"


async def test_the_campaigns_report_and_its_recipients(api: Api) -> None:
    seeded = await seed()
    got = await api.get("/api/v1/reports/campaigns", params={"period": "2026-03"})
    assert got.status == 200, got.text
    f = got.body["figures"]
    assert (f["campaigns"]["value"], f["sent"]["value"], f["reply_rate"]["value"]) == (2, 4, 0.5)
    assert f["opt_out_rate"]["kind"] == "share" and f["sent"]["previous"] is None
    sale = got.body["tables"]["campaigns"]["rows"][0]
    stats = (await api.get(f"/api/v1/campaigns/{sale['campaign_id']}/stats")).body
    for key in ("recipients", "sent", "delivered", "failed", "replied", "clicked",
                "opted_out", "deferred"):
        assert sale[key] == stats["total"][key], key
    assert got.body["chart"]["data"]["x"] == ["Spring sale", "Survey"]
    rows = await api.get("/api/v1/reports/campaigns/rows",
                         params={"period": "2026-03", "group": "Spring sale"})
    assert rows.body["total"] == 6 and "failure" in rows.body["columns"]
    assert {r["customer_id"] for r in rows.body["rows"]} == {
        c.id for c in seeded.customers.values()}
    reader = await api.key_with(Scope.REPORTS_READ)
    empty = await api.get("/api/v1/reports/campaigns", key=reader,
                          params={"period": "2026-01"})
    assert empty.status == 200 and empty.body["no_data"] is True
    assert empty.body["figures"]["reply_rate"]["value"] is None
    is_problem(await api.get("/api/v1/reports/campaigns", key=reader, params={"by": "tag"}),
               422, "validation-error")
    other = await api.key_with(Scope.CAMPAIGNS_READ)
    is_problem(await api.get("/api/v1/reports/campaigns", key=other), 403, "missing-scope")


async def test_scope_and_problems(api: Api) -> None:
    other = await api.key_with(Scope.CUSTOMERS_READ)
    is_problem(await api.get("/api/v1/reports/overview", key=other), 403, "missing-scope")
    is_problem(await api.get("/api/v1/reports/overview", key=None), 401, "unauthorized")
    reader = await api.key_with(Scope.REPORTS_READ)
    empty = await api.get("/api/v1/reports/overview", key=reader)
    assert empty.status == 200 and empty.body["no_data"] is True
    assert empty.body["figures"]["csat"]["value"] is None  # no data, not 0
    is_problem(await api.get("/api/v1/reports/nothing", key=reader), 404, "not-found")
    is_problem(await api.get("/api/v1/reports/hours", key=reader, params={"by": "tag"}),
               422, "validation-error")
    is_problem(await api.get("/api/v1/reports/overview", key=reader,
                             params={"period": "lately"}), 422, "validation-error")
    is_problem(await api.get("/api/v1/reports/overview", key=reader,
                             params={"by": "colour"}), 422, "validation-error")
