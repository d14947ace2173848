"""The OpenAPI document is valid and complete; the docs page is served from our own files."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from aiohttp import web
from openapi_spec_validator import validate

from crm.types import WebhookEvent
from tests.web.conftest import Api
from tests.web.test_auth import is_problem

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"


def api_routes(api: Api) -> set[tuple[str, str]]:
    """Every (method, path) the running server answers under /api/v1."""
    assert api.app.http is not None
    found = set()
    for resource in api.app.http.app.router.resources():
        if not isinstance(resource, web.PrefixedSubAppResource):
            continue
        for route in resource._app.router.routes():
            path = route.resource.canonical if route.resource else ""
            if path.startswith("/api/v1/") and route.method != "HEAD":
                found.add((route.method.lower(), path.removeprefix("/api/v1")))
    return found


async def test_the_document_validates_and_lists_every_route(api: Api) -> None:
    answer = await api.get("/api/v1/openapi.json", key=None)
    assert answer.status == 200
    spec = answer.body
    validate(spec)  # raises on an invalid OpenAPI 3.1 document
    assert spec["openapi"] == "3.1.0" and spec["servers"] == [{"url": "/api/v1"}]
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    served = api_routes(api)
    assert len(served) >= 20
    missing = served - documented
    assert not missing, f"routes missing from the OpenAPI document: {sorted(missing)}"
    assert not documented - served
    # Scopes, problems and the webhooks are described.
    send = spec["paths"]["/customers/{id}/messages"]["post"]
    assert send["x-scopes"] == ["messages:send"] and send["security"] == [{"bearerAuth": []}]
    assert "Idempotency-Key" in [p["name"] for p in send["parameters"]]
    assert send["responses"]["422"]["content"]["application/problem+json"]
    assert set(spec["webhooks"]) == {e.value for e in WebhookEvent}
    report = spec["paths"]["/reports/{name}"]["get"]
    assert report["x-scopes"] == ["reports:read"]
    assert {"from", "to", "period", "by"} <= {p["name"] for p in report["parameters"]}
    assert spec["paths"]["/reports/{name}/rows"]["get"]["x-scopes"] == ["reports:read"]
    listing = spec["paths"]["/customers"]["get"]
    assert {"tag", "channel", "q", "cursor", "limit", "seen_after"} <= {
        p["name"] for p in listing["parameters"]}


async def test_docs_page_loads_only_our_own_files(api: Api) -> None:
    page = await api.get("/api/docs", key=None)
    assert page.status == 200 and page.content_type == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and all(not u.startswith(("http:", "https:", "//")) for u in urls)
    for url in urls:
        got = await api.get(f"/api/{url}", key=None)
        assert got.status == 200, url
    init = (STATIC / "docs" / "init.js").read_text()
    assert "validatorUrl: null" in init and "http" not in init.replace("https?", "")
    assert 'data-openapi-url="v1/openapi.json"' in page.text


def test_the_vendored_files_are_the_ones_recorded() -> None:
    readme = (STATIC / "swagger-ui" / "README.md").read_text()
    rows = re.findall(r"^\| ([\w.-]+) \| ([0-9a-f]{64}) \|$", readme, flags=re.MULTILINE)
    assert len(rows) >= 3
    for name, digest in rows:
        assert hashlib.sha256((STATIC / "swagger-ui" / name).read_bytes()).hexdigest() == digest


async def test_unknown_routes_and_methods_are_problems_too(api: Api) -> None:
    is_problem(await api.get("/api/v1/nothing-here"), 404, "not-found")
    is_problem(await api.get("/api/v1/customers/1/nothing"), 404, "not-found")
    answer = await api.call("PUT", "/api/v1/customers")
    is_problem(answer, 405, "method-not-allowed")
    assert "GET" in answer.headers["Allow"] and "POST" in answer.headers["Allow"]
    is_problem(await api.call("DELETE", "/api/v1/openapi.json"), 405, "method-not-allowed")


async def test_lists_answer_exactly_their_documented_models(api: Api) -> None:
    """Lists are serialised from the query service's values directly: same JSON as the model."""
    from web.api.schemas.conversations import ConversationList
    from web.api.schemas.customers import CustomerList

    for n in range(3):
        await api.customer(f"+1202555{n:04d}", name=f"P{n}")
    for path, model in (("/api/v1/customers", CustomerList),
                        ("/api/v1/conversations", ConversationList)):
        body = (await api.get(path, params={"limit": "2"})).body
        assert len(body["items"]) == 2 and body["next_cursor"]
        assert model.model_validate(body).model_dump(mode="json") == body, path


async def test_cards_answer_exactly_their_documented_model(api: Api) -> None:
    """Cards are written from the views too: byte for byte what CustomerCardOut writes, also
    for what JSON writers disagree on most (floats, other scripts, integers past 64 bits)."""
    from web.api.customers import card_out
    from web.api.schemas.customers import CustomerCardOut

    ann = await api.customer("+12025550180", name="Аня ✓")
    await api.post(f"/api/v1/customers/{ann}/consent",
                   {"kind": "marketing", "granted": False, "channel": "sms"})
    await api.call("PATCH", f"/api/v1/customers/{ann}", json={"attributes": {
        "ratio": 0.1, "big": 1e21, "tiny": 5e-324, "nested": {"list": [1, 2.5, None, True]}}})
    bob = await api.customer("+12025550181", name="Bob")
    patched = await api.call("PATCH", f"/api/v1/customers/{bob}", json={"attributes": {"n": 10**30}})
    assert patched.status == 200, patched.text
    for cid in (ann, bob):
        answer = await api.get(f"/api/v1/customers/{cid}")
        assert answer.status == 200
        card = await api.core.queries.card(cid)
        assert answer.text == card_out(card).model_dump_json(by_alias=True)
        assert CustomerCardOut.model_validate(answer.body).model_dump(mode="json") == answer.body
    assert (await api.get(f"/api/v1/customers/{bob}")).body["attributes"]["n"] == 10**30
