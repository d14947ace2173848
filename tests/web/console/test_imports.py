"""Importing orders from a CSV file in the console (admins): the upload, the import as a
background task with its progress, the report with the bad rows by line; notify, dry run,
a file that cannot be read, roles and the form token."""

from __future__ import annotations

import io
from typing import Any

import pytest

from crm.models import AuditLog, Order, OrderEvent, Outbox
from crm.types import Role
from tests.web.console.conftest import Browser, Console
from web.console.imports import JOBS, ImportJob

ORDERS = """number;status;email;phone;telegram_id;name;amount;currency;placed_at;items;note
A-1;new;Ann@Example.com;;;Ann;49,90;EUR;2026-03-01 10:00;"Mug x2; Plate";first
A-2;shipped;;(202) 555-0143;;;10;USD;;;
A-3;lost;bob@example.com;;;;;;;;
A-4;new;;;;;;;;;
A-5;paid;not-mail;;;;;;;;
A-6;paid;bob@example.com;;;;1.234;EUR;;;
A-7;paid;cat@example.com;;;;;;yesterday;;
A-8;new;;;555000111;<b>Tg</b>;;;;[{"name": "Pen", "quantity": 3}];
"""


def _file(text: str, name: str = "orders.csv") -> io.BytesIO:
    data = io.BytesIO(text.encode())
    data.name = name
    return data


async def _upload(console: Console, browser: Browser, text: str, **form: Any) -> ImportJob:
    sent = await browser.post("/console/orders/import", {"file": _file(text), **form})
    assert sent.status == 303, sent.text
    job_id = sent.headers["Location"].rsplit("/", 1)[1]
    assert console.app.console is not None
    job = console.app.console[JOBS][job_id]
    assert job.task is not None
    await job.task  # the import runs in the background; its page follows it
    return job


async def test_an_admin_imports_orders_and_reads_the_bad_rows(console: Console) -> None:
    ada = await console.staff("Ada", Role.ADMIN)
    browser = await console.signed_in(ada)
    form = await browser.get("/console/orders/import")
    assert form.status == 200 and 'enctype="multipart/form-data"' in form.text
    job = await _upload(console, browser, ORDERS)
    page = await browser.get(f"/console/orders/import/{job.id}")
    assert page.status == 200 and 'data-done="yes"' in page.text
    assert 'value="100"' in page.text and "hx-trigger" not in page.text  # polling stopped
    assert "8 rows: 3 good (3 new, 0 updated, 0 unchanged), 5 bad." in page.text
    assert "3 customers created." in page.text
    for line, reason in ((4, "unknown status &#39;lost&#39;"),
                         (5, "a new order needs its customer"),
                         (6, "&#39;not-mail&#39; is not an email address"),
                         (7, "has more decimals than EUR has (2)"),
                         (8, "&#39;yesterday&#39; is not a date")):
        row = page.text.split(f'<tr data-line="{line}">', 1)[1].split("</tr>", 1)[0]
        assert reason in row, line
    assert sorted(await Order.all().values_list("number", flat=True)) == ["A-1", "A-2", "A-8"]
    # Who imported: the admin, in the orders' history and the audit log.
    assert await OrderEvent.filter(actor=f"manager:{ada.id}", source="import").count() == 3
    assert await AuditLog.filter(action="orders.imported", actor=f"manager:{ada.id}").exists()
    assert await Outbox.all().count() == 0  # history, not news: nobody is told
    # The list of the admin's imports, and the orders' list, show them.
    again = await browser.get("/console/orders/import")
    assert f'href="/console/orders/import/{job.id}"' in again.text
    orders = await browser.get("/console/orders")
    assert "A-8" in orders.text and "&lt;b&gt;Tg&lt;/b&gt;" in orders.text


async def test_the_progress_part_is_what_htmx_asks_for(console: Console) -> None:
    ada = await console.staff("Ada", Role.ADMIN)
    browser = await console.signed_in(ada)
    rows = "".join(f"N-{n};new;n{n}@example.com;;;;;;;;\n" for n in range(1200))
    job = await _upload(console, browser, ORDERS.splitlines()[0] + "\n" + rows)
    part = await browser.get(f"/console/orders/import/{job.id}?part=progress",
                             headers={"HX-Request": "true"})
    assert part.text.startswith('<section class="card" id="import-progress"')
    assert "<html" not in part.text and "1200 rows: 1200 good" in part.text
    assert await Order.all().count() == 1200


def test_progress_counts_the_bytes_read() -> None:
    job = ImportJob("j", 1, "f.csv", size=1000, notify=False, dry_run=False)
    assert job.percent == 0 and not job.done
    job.advance(250)
    job.advance(100)  # never backwards
    assert job.percent == 25
    job.advance(5000)
    assert job.percent == 99  # read, not yet stored
    job.error = "broken"
    assert job.done


async def test_notify_and_dry_run(console: Console) -> None:
    ada = await console.staff("Ada", Role.ADMIN)
    cid = await console.customer("+12025550401", "hi")
    await console.core.orders.put("Z-1", _input(cid), source="api", actor="api:shop")
    browser = await console.signed_in(ada)
    moved = "number;status\nZ-1;shipped\n"
    dry = await _upload(console, browser, moved, dry_run="on", notify="on")
    page = await browser.get(f"/console/orders/import/{dry.id}")
    assert "Dry run: nothing was stored." in page.text and "1 updated" in page.text
    assert (await Order.get(number="Z-1")).status == "new"
    await _upload(console, browser, moved, notify="on")
    assert (await Order.get(number="Z-1")).status == "shipped"
    [sent] = await console.sms.wait_sent(1)
    assert "Z-1" in sent.text and sent.address == "+12025550401"
    assert await Outbox.filter(idempotency_key__startswith="order:").count() == 1


def _input(customer_id: int) -> Any:
    from crm.orders.service import CustomerRef, OrderInput

    return OrderInput(customer=CustomerRef(customer_id=customer_id), status="new")


async def test_a_file_that_cannot_be_read(console: Console) -> None:
    ada = await console.staff("Ada", Role.ADMIN)
    browser = await console.signed_in(ada)
    empty = await _upload(console, browser, "")
    page = await browser.get(f"/console/orders/import/{empty.id}")
    assert 'id="import-error"' in page.text and "orders.csv: the file is empty" in page.text
    assert "crm-import-" not in page.text  # the server's temporary path is not shown
    missing = await browser.post("/console/orders/import", {"notify": "on"})
    assert missing.status == 422 and "choose a CSV file first" in missing.text


@pytest.mark.parametrize("role", [Role.MANAGER, Role.LEAD, Role.MARKETER])
async def test_only_admins_import(console: Console, role: Role) -> None:
    who = await console.staff("Who", role)
    browser = await console.signed_in(who)
    assert (await browser.get("/console/orders/import")).status == 403
    refused = await browser.post("/console/orders/import", {"file": _file(ORDERS)})
    assert refused.status == 403
    assert await Order.all().count() == 0


async def test_the_form_token_and_someone_elses_import(console: Console) -> None:
    ada = await console.staff("Ada", Role.ADMIN)
    bea = await console.staff("Bea", Role.ADMIN)
    browser = await console.signed_in(ada)
    forged = await browser.post("/console/orders/import", {"file": _file(ORDERS)}, csrf=None)
    assert forged.status == 403 and await Order.all().count() == 0
    job = await _upload(console, browser, ORDERS)
    other = await console.signed_in(bea)
    assert (await other.get(f"/console/orders/import/{job.id}")).status == 404
    assert (await other.get("/console/orders/import/nope")).status == 404
