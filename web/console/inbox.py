"""The inbox (lists with counts, filters), the customers list and search."""

from __future__ import annotations

from aiohttp import web

from crm.inbox import InboxFilter, InboxList
from crm.queries import CustomerFilter
from crm.roles import Permission
from crm.types import Channel
from web.console.guard import PATH, Visit, redirect, staff

CHANNELS = (Channel.TELEGRAM, Channel.EMAIL, Channel.SMS, Channel.WEBCHAT)
MAX_QUERY = 200


def _channel(value: str | None) -> Channel | None:
    return next((c for c in CHANNELS if c.value == value), None)


@staff()
async def home(visit: Visit) -> web.Response:
    # The first page a role has: a manager's inbox, a marketer's campaigns, …
    for permission, page in ((Permission.INBOX, "inbox"), (Permission.CAMPAIGNS, "campaigns"),
                             (Permission.CUSTOMERS, "customers"),
                             (Permission.REPORTS, "reports")):
        if visit.can(permission):
            return redirect(f"{PATH}/{page}")
    return visit.refuse(403, "forbidden")


@staff(Permission.INBOX)
async def inbox(visit: Visit) -> web.Response:
    q = visit.request.query
    which = next((w for w in InboxList if w.value == q.get("list")), InboxList.MINE)
    f = InboxFilter(channel=_channel(q.get("channel")),
                    tag=(q.get("tag") or "").strip().lstrip("#").lower()[:64] or None)
    size = visit.core.settings.console.page_size
    page_no = max(0, min(int(q["page"]) if q.get("page", "").isdigit() else 0, 10_000))
    page = await visit.core.queries.inbox.page(which, visit.manager.id, f, size,
                                               page_no * size)
    partial = visit.request.headers.get("HX-Request") == "true"
    return visit.render("inbox_list.html" if partial else "inbox.html", {
        "which": which.value, "lists": [w.value for w in InboxList],
        "counts": {w.value: n for w, n in page.counts.items()}, "rows": page.rows,
        "more": page.more, "page_no": page_no, "channels": [c.value for c in CHANNELS],
        "channel": f.channel.value if f.channel else "", "tag": f.tag or "",
        "query": visit.request.query_string})


@staff(Permission.CUSTOMERS)
async def customers(visit: Visit) -> web.Response:
    q = visit.request.query
    text = (q.get("q") or "").strip()[:MAX_QUERY]
    tag = (q.get("tag") or "").strip().lstrip("#").lower()[:64] or None
    page = await visit.core.queries.customers(
        CustomerFilter(q=text or None, tag=tag, channel=_channel(q.get("channel"))),
        visit.core.settings.console.page_size, q.get("cursor") or None)
    return visit.render("customers.html", {
        "customers": page.items, "next_cursor": page.next_cursor, "q": text, "tag": tag or "",
        "channel": q.get("channel") or "", "channels": [c.value for c in CHANNELS]})


@staff(Permission.CUSTOMERS)
async def search(visit: Visit) -> web.Response:
    text = (visit.request.query.get("q") or "").strip()[:MAX_QUERY]
    result = await visit.core.queries.search(text, limit=30) if text else None
    return visit.render("search.html", {"q": text, "result": result})
