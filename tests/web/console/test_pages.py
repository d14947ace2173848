"""Every page and action of the console over HTTP: the inbox lists and counts, filters, search,
the customer's page, reply, note, assign, close, reopen, tags; roles, CSRF, headers, escaping."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from crm.inbox import InboxList
from crm.models import AuditLog, Conversation, Message, Outbox
from crm.types import Channel, ConversationStatus, Direction, Role
from tests.web.console.conftest import Console

XSS = "<img src=x onerror=alert(1)>"


async def test_inbox_lists_with_counts_and_filters(console: Console) -> None:
    ann = await console.staff("Ann")
    a = await console.customer("+12025550101", "first", name="Alice")
    b = await console.customer("+12025550102", "second", name="Boris")
    c = await console.customer("c@example.com", "third", channel=Channel.EMAIL, name="Chen")
    await console.core.conversations.assign(a, ann, actor="test")
    await console.core.conversations.send(b, "answered", author=ann)
    await console.core.conversations.set_status(c, ConversationStatus.CLOSED, actor="test")
    await console.core.customers.retag(b, add=["vip"])
    browser = await console.signed_in(ann)

    counts = await console.core.queries.inbox.counts(ann.id, _no_filter())
    assert counts == {InboxList.MINE: 1, InboxList.UNASSIGNED: 1, InboxList.OPEN: 2,
                      InboxList.WAITING: 1, InboxList.CLOSED: 1}
    mine = await browser.get("/console/inbox")
    assert mine.status == 200 and "Alice" in mine.text and "Boris" not in mine.text
    assert 'data-count="waiting">1<' in mine.text and 'data-count="open">2<' in mine.text
    closed = await browser.get("/console/inbox?list=closed")
    assert "Chen" in closed.text and "Alice" not in closed.text
    email = await browser.get("/console/inbox?list=open&channel=email")
    assert "Alice" not in email.text and 'data-count="closed">1<' in email.text
    vip = await browser.get("/console/inbox?list=open&tag=vip")
    assert "Boris" in vip.text and "Alice" not in vip.text
    # htmx asks for the list alone when a live event comes.
    part = await browser.get("/console/inbox?list=open", headers={"HX-Request": "true"})
    assert part.text.lstrip().startswith('<nav class="tabs">') and "<html" not in part.text


async def test_waiting_on_us_is_sorted_by_how_long_the_customer_waited(
        console: Console) -> None:
    ann = await console.staff("Ann")
    older = await console.customer("+12025550111", "I wrote first", name="Early")
    newer = await console.customer("+12025550112", "I wrote second", name="Late")
    browser = await console.signed_in(ann)
    page = await browser.get("/console/inbox?list=waiting")
    assert page.text.index("Early") < page.text.index("Late")
    assert older != newer


async def test_search_finds_by_name_address_and_text(console: Console) -> None:
    ann = await console.staff("Ann")
    await console.customer("+12025550121", "where is my parcel", name="Dmitri")
    browser = await console.signed_in(ann)
    by_text = await browser.get("/console/search?q=parc")
    assert "Dmitri" in by_text.text and "where is my parcel" in by_text.text
    by_phone = await browser.get("/console/search?q=5550121")
    assert "Dmitri" in by_phone.text


async def test_customer_page_shows_card_timeline_and_delivery(console: Console) -> None:
    ann = await console.staff("Ann")
    cid = await console.customer("+12025550131", "hello there", name="Eva")
    await console.core.customers.update(cid, lead_source="instagram")
    browser = await console.signed_in(ann)
    sent = await browser.post(f"/console/customers/{cid}/reply", {"text": "Hi Eva!",
                                                                  "nonce": "n1"})
    assert sent.status == 303 and sent.headers["Location"] == f"/console/customers/{cid}"
    await _sent(console, "Hi Eva!")
    page = await browser.get(f"/console/customers/{cid}")
    assert page.status == 200
    for text in ("Eva", "+12025550131", "instagram", "hello there", "Hi Eva!", "No orders."):
        assert text in page.text
    assert 'data-status="sent"' in page.text or 'data-status="queued"' in page.text


async def test_reply_goes_through_the_outbox_once_on_the_chosen_channel(
        console: Console) -> None:
    ann = await console.staff("Ann")
    cid = await console.customer("+12025550141", "hi")
    await console.core.customers.add_identity(cid, Channel.TEST, "test-addr", actor="test")
    browser = await console.signed_in(ann)
    form = {"text": "by the test channel", "channel": "", "nonce": "same"}
    for _ in range(2):  # a double submit sends once
        assert (await browser.post(f"/console/customers/{cid}/reply", form)).status == 303
    assert await Outbox.filter(customer_id=cid).count() == 1
    out = await Message.get(direction=Direction.OUT)
    assert out.channel is Channel.SMS and out.author_id == ann.id
    assert await AuditLog.filter(action="message.queued", actor=f"manager:{ann.id}").exists()


async def test_note_assign_close_reopen_and_tags(console: Console) -> None:
    ann = await console.staff("Ann")
    bob = await console.staff("Bob")
    cid = await console.customer("+12025550151", "help me")
    conv = await Conversation.get(customer_id=cid)
    browser = await console.signed_in(ann)
    base = f"/console/customers/{cid}"
    assert (await browser.post(f"{base}/note", {"text": "VIP, be nice"})).status == 303
    note = await Message.get(direction=Direction.NOTE)
    assert note.text == "VIP, be nice" and note.author_id == ann.id
    assert await Outbox.filter(customer_id=cid).count() == 0  # a note is never sent

    assert (await browser.post(f"{base}/assign", {"manager_id": str(bob.id),
                                                  "conversation_id": str(conv.id)})).status == 303
    await conv.refresh_from_db()
    assert conv.assignee_id == bob.id
    assert (await browser.post(f"{base}/status", {"to": "close",
                                                  "conversation_id": str(conv.id)})).status == 303
    await conv.refresh_from_db()
    assert conv.status is ConversationStatus.CLOSED
    page = await browser.get(base)
    assert 'id="reopen"' in page.text and "closed" in page.text
    assert (await browser.post(f"{base}/status", {"to": "reopen",
                                                  "conversation_id": str(conv.id)})).status == 303
    await conv.refresh_from_db()
    assert conv.status is ConversationStatus.OPEN

    assert (await browser.post(f"{base}/tags", {"add": "#VIP wholesale"})).status == 303
    assert (await browser.post(f"{base}/tags", {"remove": "wholesale"})).status == 303
    customer = await console.core.customers.get(cid)
    assert customer.tags == ["vip"]
    # Assign to nobody; a stale form (another conversation opened since) is refused.
    assert (await browser.post(f"{base}/assign", {"manager_id": ""})).status == 303
    await conv.refresh_from_db()
    assert conv.assignee_id is None
    stale = await browser.post(f"{base}/status", {"to": "close",
                                                  "conversation_id": str(conv.id + 99)})
    assert stale.status == 409 and "no longer the customer" in stale.text


async def test_a_refused_send_is_shown_on_the_page(console: Console) -> None:
    ann = await console.staff("Ann")
    cid = await console.customer("+12025550161", "hi")
    browser = await console.signed_in(ann)
    page = await browser.post(f"/console/customers/{cid}/reply", {"text": "mail",
                                                                  "channel": "email"})
    assert page.status == 422 and "has no address on email" in page.text
    empty = await browser.post(f"/console/customers/{cid}/note", {"text": "   "})
    assert empty.status == 422
    assert await Message.filter(direction=Direction.NOTE).count() == 0


async def test_customer_text_is_escaped_everywhere(console: Console) -> None:
    ann = await console.staff("Ann")
    cid = await console.customer("+12025550171", f"hi {XSS}", name=XSS)
    await console.core.customers.retag(cid, add=["<b>x</b>"])
    browser = await console.signed_in(ann)
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    for path in ("/console/inbox?list=open", f"/console/customers/{cid}",
                 "/console/customers", "/console/search?q=onerror"):
        page = await browser.get(path)
        assert page.status == 200, path
        assert XSS not in page.text and escaped in page.text, path
    assert "<b>x</b>" not in (await browser.get(f"/console/customers/{cid}")).text


async def test_every_page_has_the_security_headers(console: Console) -> None:
    ann = await console.staff("Ann")
    browser = await console.signed_in(ann)
    for path in ("/console/inbox", "/console/sign-in", "/console/nowhere"):
        page = await browser.get(path)
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["Referrer-Policy"] == "same-origin"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in (await browser.get("/console/inbox")).text  # no inline script


async def test_a_post_without_the_token_or_from_another_site_is_refused(
        console: Console) -> None:
    ann = await console.staff("Ann")
    cid = await console.customer("+12025550181", "hi")
    browser = await console.signed_in(ann)
    base = f"/console/customers/{cid}"
    missing = await browser.post(f"{base}/note", {"text": "forged"}, csrf=None)
    wrong = await browser.post(f"{base}/note", {"text": "forged"}, csrf="guess")
    assert missing.status == wrong.status == 403
    assert "did not come from this console" in missing.text
    other_site = await browser.post(f"{base}/note", {"text": "forged"},
                                    headers={"Origin": "https://evil.example"})
    assert other_site.status == 403
    fetch_site = await browser.post(f"{base}/note", {"text": "forged"},
                                    headers={"Sec-Fetch-Site": "cross-site"})
    assert fetch_site.status == 403
    assert await Message.filter(direction=Direction.NOTE).count() == 0
    ok = await browser.post(f"{base}/note", {"text": "real"},
                            headers={"Origin": console.base})
    assert ok.status == 303


@pytest.mark.parametrize(("role", "path", "allowed"), [
    (Role.MARKETER, "/console/inbox", False),
    (Role.MARKETER, "/console/customers", True),
    (Role.MARKETER, "/console/team", False),
    (Role.MARKETER, "/console/events", False),
    (Role.MANAGER, "/console/inbox", True),
    (Role.MANAGER, "/console/team", False),
    (Role.ADMIN, "/console/team", True),
])
async def test_roles_on_pages(console: Console, role: Role, path: str, allowed: bool) -> None:
    who = await console.staff("Who", role)
    browser = await console.signed_in(who)
    page = await browser.get(path) if path != "/console/events" else None
    if page is not None:
        assert page.status == (200 if allowed else 403), page.text
    else:
        async with browser.http.get(console.base + path) as r:
            assert r.status == 403


async def test_a_marketer_reads_a_customer_but_cannot_act(console: Console) -> None:
    mia = await console.staff("Mia", Role.MARKETER)
    cid = await console.customer("+12025550191", "hi", name="Gus")
    browser = await console.signed_in(mia)
    page = await browser.get(f"/console/customers/{cid}")
    assert page.status == 200 and "Gus" in page.text and 'id="reply-form"' not in page.text
    for action, form in (("reply", {"text": "x"}), ("note", {"text": "x"}),
                         ("assign", {"manager_id": str(mia.id)}), ("status", {"to": "close"}),
                         ("tags", {"add": "x"})):
        refused = await browser.post(f"/console/customers/{cid}/{action}", form)
        assert refused.status == 403, action
    assert await Message.filter(customer_id=cid).count() == 1
    assert (await browser.post("/console/team/keys", {"name": "k",
                                                      "scope": "customers:read"})).status == 403


async def test_attachments_download_for_staff_only(console: Console, tmp_path: Path) -> None:
    ann = await console.staff("Ann")
    data = b"%PDF-1.4 invoice"
    saved = console.core.files.save(data, kind="document", filename="счёт.pdf",
                                    mime_type="application/pdf")
    from crm.types import InboundMessage

    result = await console.core.timeline.ingest(InboundMessage(
        Channel.SMS, "with-file", "+12025550199", text="see attached", attachments=(saved,)))
    message = await Message.get(customer_id=result.customer_id, direction=Direction.IN)
    path = f"/console/files/{message.id}/0"
    stranger = console.browser()
    assert (await stranger.get(path)).status == 303  # to the sign-in page
    browser = await console.signed_in(ann)
    page = await browser.get(f"/console/customers/{result.customer_id}")
    assert f'href="{path}"' in page.text
    async with browser.http.get(console.base + path) as r:
        assert r.status == 200 and await r.read() == data
        assert r.headers["Content-Disposition"].startswith("attachment;")
    assert hashlib.sha256(data).hexdigest()


async def _sent(console: Console, text: str) -> None:
    async with console.sms.changed:
        await console.sms.changed.wait_for(lambda: any(m.text == text for m in console.sms.sent))


def _no_filter():  # type: ignore[no-untyped-def]
    from crm.inbox import InboxFilter

    return InboxFilter()
