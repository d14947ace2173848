"""The segment builder over HTTP: conditions added and combined, the live count and sample (a
hostile name shown as text), saved and loaded, a segment beyond the builder edited as JSON;
roles and the form token."""

from __future__ import annotations

import re
from typing import Any

import pytest

from crm.models import Customer, Identity, Segment
from crm.types import Channel, Role
from tests.web.console.conftest import Browser, Console

XSS = "<img src=x onerror=alert(1)>"


async def _customer(name: str, tags: list[str], language: str = "en",
                    **addresses: str) -> int:
    customer = await Customer.create(name=name, tags=tags, language=language)
    for channel, address in addresses.items():
        await Identity.create(customer_id=customer.id, channel=Channel(channel),
                              address=address)
    return customer.id


def _count(text: str) -> int:
    found = re.search(r'id="segment-count" data-count="(\d+)"', text)
    assert found, text
    return int(found.group(1))


def _rows(text: str) -> list[str]:
    return re.findall(r'class="condition" data-row="(\d+)"', text)


async def test_a_marketer_builds_previews_saves_and_loads_a_segment(console: Console) -> None:
    mia = await console.staff("Mia", Role.MARKETER)
    await _customer(XSS, ["vip"], telegram="101")
    await _customer("Ann", ["vip"], language="ru", email="ann@example.com")
    await _customer("Bob", ["club"], language="ru", sms="+12025550101")
    await _customer("Cat", [])
    browser = await console.signed_in(mia)
    page = await browser.get("/console/segments/new")
    assert page.status == 200 and _count(page.text) == 4  # nothing chosen: everyone
    assert 'hx-post="/console/segments/preview"' in page.text

    # Add a condition to the first group, and a second group.
    form: dict[str, Any] = {"name": "", "mode": "builder", "match": "all", "gm0": "all",
                            "r1.g": "0", "r1.kind": "tag", "r1.value": "vip"}
    more = await browser.post("/console/segments/builder", {**form, "action": "add-group"},
                              headers={"HX-Request": "true"})
    assert more.status == 200 and more.headers["HX-Trigger"] == "segment-changed"
    assert _rows(more.text) == ["1", "2"] and 'name="gm1"' in more.text
    assert "<html" not in more.text  # the builder alone

    # vip, or Russian speakers: the count and ten of them, as the form changes.
    form |= {"match": "any", "gm1": "all", "r2.g": "1", "r2.kind": "language",
             "r2.value": "ru"}
    shown = await browser.post("/console/segments/preview", form)
    assert _count(shown.text) == 3
    assert XSS not in shown.text and "&lt;img src=x onerror=alert(1)&gt;" in shown.text
    assert 'class="badge ch-telegram">telegram' in shown.text
    # and: vip and Russian.
    assert _count((await browser.post("/console/segments/preview",
                                      {**form, "match": "all"})).text) == 1
    # A bad condition is named, an unfinished one said to be left out.
    bad = await browser.post("/console/segments/preview", {
        **form, "r2.kind": "consent", "r2.value": "pigeon", "r3.g": "1", "r3.kind": "tag"})
    assert "condition 2.consent: &#39;pigeon&#39; is not a channel" in bad.text
    assert 'id="unfinished"' in bad.text and _count(bad.text) == 2  # vip alone

    saved = await browser.post("/console/segments", {**form, "name": "vip-or-ru",
                                                     "description": "for spring"})
    assert saved.status == 303
    segment = await Segment.get(name="vip-or-ru")
    assert saved.headers["Location"] == f"/console/segments/{segment.id}?saved=1"
    assert segment.filters == {"any": [{"tag": "vip"}, {"language": "ru"}]}
    assert (await console.core.segments.preview(segment.filters)).count == 3

    # Loaded again: the same conditions in the builder, ready to change.
    loaded = await browser.get(f"/console/segments/{segment.id}?saved=1")
    assert 'id="saved"' in loaded.text and _count(loaded.text) == 3
    assert 'value="vip-or-ru"' in loaded.text and len(_rows(loaded.text)) == 2
    listed = await browser.get("/console/segments")
    assert 'data-segment="vip-or-ru"' in listed.text and "for spring" in listed.text
    # The same name saves over it; another segment's name is refused.
    await console.core.segments.create("taken", {"tag": "club"})
    again = {**form, "name": "vip-or-ru", "original": "vip-or-ru", "r2.value": "en"}
    assert (await browser.post("/console/segments", again)).status == 303
    assert (await Segment.get(id=segment.id)).filters["any"][1] == {"language": "en"}
    taken = await browser.post("/console/segments", {**again, "name": "taken"})
    assert taken.status == 409 and "exists already" in taken.text
    assert (await Segment.get(name="taken")).filters == {"tag": "club"}


async def test_a_segment_beyond_the_builder_is_edited_as_json(console: Console) -> None:
    ada = await console.staff("Ada", Role.ADMIN)
    await _customer("Ann", ["a", "b"])
    deep = {"not": {"any": [{"tag": "a"}, {"all": [{"tag": "b"}, {"tag": "c"}]}]}}
    segment = await console.core.segments.create("deep", deep)
    browser = await console.signed_in(ada)
    page = await browser.get(f"/console/segments/{segment.id}")
    assert 'id="cannot-show"' in page.text and 'id="filter-json"' in page.text
    assert _count(page.text) == 0
    form = {"name": "deep", "original": "deep", "mode": "json",
            "filter_json": '{"tag": "a"}'}
    assert _count((await browser.post("/console/segments/preview", form)).text) == 1
    broken = await browser.post("/console/segments/preview", {**form,
                                                              "filter_json": '{"tag": '})
    assert 'id="preview-error"' in broken.text and "not JSON" in broken.text
    refused = await browser.post("/console/segments", {**form, "filter_json": '{"tagz": 1}'})
    assert refused.status == 422 and "unknown condition" in refused.text
    assert (await Segment.get(id=segment.id)).filters == deep
    # Back to the builder once it fits, and to JSON again.
    back = await browser.post("/console/segments/builder", {**form, "action": "to-builder"},
                              headers={"HX-Request": "true"})
    assert _rows(back.text) == ["1"] and 'name="mode" value="builder"' in back.text
    out = await browser.post("/console/segments/builder", {
        "mode": "builder", "r1.g": "0", "r1.kind": "tag", "r1.value": "a, b",
        "action": "to-json"}, headers={"HX-Request": "true"})
    assert "&#34;tag&#34;: [" in out.text or "&quot;tag&quot;: [" in out.text


@pytest.mark.parametrize(("role", "allowed"), [
    (Role.MANAGER, False), (Role.LEAD, False), (Role.MARKETER, True), (Role.ADMIN, True)])
async def test_only_marketers_and_admins_build_segments(console: Console, role: Role,
                                                       allowed: bool) -> None:
    who = await console.staff("Who", role)
    browser = await console.signed_in(who)
    status = 200 if allowed else 403
    assert (await browser.get("/console/segments")).status == status
    assert (await browser.get("/console/segments/new")).status == status
    preview = await browser.post("/console/segments/preview", {"mode": "builder"})
    assert preview.status == status
    saved = await browser.post("/console/segments", {"name": "x", "mode": "builder"})
    assert saved.status == (303 if allowed else 403)
    nav = (await browser.get("/console/")).headers.get("Location", "")
    home = await browser.get(nav)
    assert ('href="/console/segments"' in home.text) is allowed
    assert ('href="/console/campaigns"' in home.text) is allowed


async def test_the_form_token_is_checked(console: Console) -> None:
    mia = await console.staff("Mia", Role.MARKETER)
    browser: Browser = await console.signed_in(mia)
    for path in ("/console/segments", "/console/segments/preview",
                 "/console/segments/builder"):
        refused = await browser.post(path, {"name": "x", "mode": "builder"}, csrf=None)
        assert refused.status == 403, path
        wrong = await browser.post(path, {"name": "x", "mode": "builder"}, csrf="forged")
        assert wrong.status == 403, path
    assert await Segment.all().count() == 0
