"""`crm orders import` and `crm customers import` through the real command: good and bad rows,
line numbers, exit codes, --dry-run, a second run that changes nothing, odd encodings."""

from __future__ import annotations

from pathlib import Path

from crm.models import AuditLog, Consent, Customer, Identity, Message, Order, OrderEvent
from crm.services import Core
from crm.types import Channel, ConsentKind, Direction, InboundMessage
from tests.crm.test_cli import config, crm

__all__ = ["config"]  # the fixture

ORDERS = """number;status;email;phone;telegram_id;name;amount;currency;placed_at;items;note
A-1;new;Ann@Example.com;;;Ann;49,90;EUR;2026-03-01 10:00;"Mug x2; Plate";first
A-2;shipped;;(202) 555-0143;;;10;USD;;;
A-3;lost;bob@example.com;;;;;;;;
A-4;new;;;;;;;;;
A-5;paid;not-mail;;;;;;;;
A-6;paid;bob@example.com;;;;1.234;EUR;;;
A-7;paid;cat@example.com;;;;;;yesterday;;
A-8;new;;;555000111;Tg;;;;[{"name": "Pen", "quantity": 3}];
"""


def write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "o.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


async def test_good_rows_are_stored_and_bad_ones_reported_by_line(
        config: Path, core: Core, tmp_path: Path) -> None:
    # Ann already wrote by email: her order joins her, matched by the normalised address.
    ann = await core.timeline.ingest(InboundMessage(Channel.EMAIL, "m1", "ann@example.com",
                                                    text="hi"))
    path = write(tmp_path, ORDERS)
    done = crm(config, "orders", "import", str(path), ok=False)
    assert done.returncode == 1, done.stderr
    assert "8 rows: 3 good (3 new, 0 updated, 0 unchanged), 5 bad; 2 customers created" \
        in done.stdout
    bad = [line for line in done.stderr.splitlines() if line.startswith(str(path))]
    assert bad == [
        f"{path}:4: status: unknown status 'lost': use one of new, paid, shipped, delivered, "
        "cancelled (see [orders] in the config)",
        f"{path}:5: email: a new order needs its customer: an email, phone or telegram_id",
        f"{path}:6: email: 'not-mail' is not an email address (expected name@domain)",
        f"{path}:7: amount: '1.234' has more decimals than EUR has (2)",
        f"{path}:8: placed_at: 'yesterday' is not a date (ISO 8601, e.g. 2026-03-01 10:00)",
    ]
    orders = {o.number: o for o in await Order.all()}
    assert sorted(orders) == ["A-1", "A-2", "A-8"]
    a1 = orders["A-1"]
    assert a1.customer_id == ann.customer_id and a1.amount_minor == 4990
    assert a1.items == [{"name": "Mug", "quantity": 2}, {"name": "Plate", "quantity": 1}]
    assert f"{a1.placed_at:%Y-%m-%d %H:%M}" == "2026-03-01 10:00"
    assert (await Identity.get(channel=Channel.SMS)).address == "+12025550143"
    assert orders["A-8"].items == [{"name": "Pen", "quantity": 3}]
    assert (await Customer.get(id=orders["A-8"].customer_id)).name == "Tg"
    assert await OrderEvent.filter(note="first").count() == 1
    assert await AuditLog.filter(action="orders.imported").count() == 1

    # Again: nothing changes, nothing is written.
    events = await OrderEvent.all().count()
    again = crm(config, "orders", "import", str(path), ok=False)
    assert "3 unchanged" in again.stdout and "0 new" in again.stdout
    assert await OrderEvent.all().count() == events
    assert await Customer.all().count() == 3

    # A later file moves a status: an event in the history and in the timeline; final stays.
    later = write(tmp_path, "number,status\nA-1,delivered\nA-1,shipped\n", name="later.csv")
    moved = crm(config, "orders", "import", str(later), ok=False)
    assert moved.returncode == 1
    assert f"{later}:3: status: order A-1 is delivered, a final status: it cannot become " \
           "shipped" in moved.stderr
    assert (await Order.get(number="A-1")).status == "delivered"
    timeline = await Message.filter(customer_id=ann.customer_id,
                                    direction=Direction.EVENT).values_list("text", flat=True)
    assert timeline == ["Order A-1 placed: New (import:o.csv). Note: first",
                        "Order A-1: New → Delivered (import:later.csv)."]


async def test_a_dry_run_stores_nothing_and_says_the_same(config: Path, tmp_path: Path) -> None:
    path = write(tmp_path, ORDERS)
    dry = crm(config, "orders", "import", str(path), "--dry-run", ok=False)
    assert dry.returncode == 1 and "dry run: nothing was stored" in dry.stdout
    assert not await Order.exists() and not await Customer.exists()
    assert not await AuditLog.exists()
    real = crm(config, "orders", "import", str(path), ok=False)
    assert real.stdout.splitlines()[0] == dry.stdout.splitlines()[0]
    assert real.stderr.count(str(path)) == dry.stderr.count(str(path))


async def test_encodings_bom_cp1251_and_a_clear_refusal(config: Path, tmp_path: Path) -> None:
    text = "number,status,email,name\nЗ-1,new,ivan@example.com,Иван Петров\n"
    for encoding, name in (("utf-8-sig", "bom.csv"), ("cp1251", "win.csv"),
                           ("utf-16", "u16.csv")):
        path = write(tmp_path, text.replace("З-1", f"З-{name[0]}1"), encoding, name)
        done = crm(config, "orders", "import", str(path))
        assert "1 new" in done.stdout, (name, done.stdout, done.stderr)
    names = set(await Customer.all().values_list("name", flat=True))
    assert names == {"Иван Петров"}
    assert await Order.all().count() == 3
    # UTF-8 at the start, something else further on: refused, saying where and what to set.
    big = "number,email\n" + "".join(f"X-{n},x{n}@example.com\n" for n in range(5000))
    path = tmp_path / "mixed.csv"
    path.write_bytes(big.encode() + "Z-1,\u0437@example.com\n".encode("cp1251"))
    refused = crm(config, "orders", "import", str(path), ok=False)
    assert refused.returncode == 1
    assert "not valid utf-8" in refused.stderr and 'encoding = "cp1251"' in refused.stderr
    missing = write(tmp_path, "id,mail\n1,a@b.c\n", name="nocol.csv")
    refused = crm(config, "orders", "import", str(missing), ok=False)
    assert "no column 'number'" in refused.stderr and "id, mail" in refused.stderr


async def test_customers_import_with_tags_attributes_and_consent(config: Path, core: Core,
                                                                tmp_path: Path) -> None:
    append(config, '\n[customers.csv]\nattributes = ["city"]\n')
    known = await core.timeline.ingest(InboundMessage(Channel.SMS, "s1", "+12025550143",
                                                      text="hi"))
    path = write(tmp_path, "email,phone,name,language,tags,city,marketing,notifications\n"
                           "ann@example.com,+1 202 555 0143,Ann,ru,\"vip, Wholesale\",Riga,no,"
                           "yes\n"
                           "bob@example.com,,Bob,,,,да,\n"
                           ",,Nobody,,,,,\n"
                           "cat@example.com,,Cat,xx-yy-zz,,,maybe,\n", name="c.csv")
    done = crm(config, "customers", "import", str(path), ok=False)
    assert done.returncode == 1
    assert "4 rows: 2 good (1 new, 1 updated" in done.stdout
    assert f"{path}:4: email: no email, phone or telegram_id" in done.stderr
    assert f"{path}:5: language: 'xx-yy-zz' is not a language code" in done.stderr
    ann = await Customer.get(id=known.customer_id)
    assert (ann.name, ann.language, ann.tags, ann.attributes) == (
        "Ann", "ru", ["vip", "wholesale"], {"city": "Riga"})
    assert await Identity.filter(customer_id=ann.id).count() == 2
    rows = {(c.customer_id, c.kind, c.channel, c.granted, c.source, c.actor)
            for c in await Consent.all()}
    # Ann's "no" is recorded, from the import; Bob's "да" and Ann's notifications "yes" held
    # already (the defaults), so they change nothing, as any word that already holds.
    assert rows == {(ann.id, ConsentKind.MARKETING, "*", False, "import", "import:c.csv")}
    assert not await core.consent.allows(ann.id, ConsentKind.MARKETING, Channel.EMAIL)
    again = crm(config, "customers", "import", str(path), ok=False)
    assert "0 new, 0 updated, 2 unchanged" in again.stdout
    assert await Consent.all().count() == 1
    assert await AuditLog.filter(action="consent.changed").count() == 1


async def test_an_import_adds_no_address_to_a_known_customer_and_names_a_record_s_first_line(
        config: Path, core: Core, tmp_path: Path) -> None:
    ann = await core.timeline.ingest(InboundMessage(Channel.EMAIL, "m1", "ann@example.com",
                                                    text="hi"))
    path = write(tmp_path, 'number,email,phone,items,amount\n'
                           'B-1,ann@example.com,+12025550199,"Mug\nPlate",5\n'
                           'B-2,new@example.com,+12025550188,Cup,1.234\n'
                           'B-3,new@example.com,+12025550177,Cup,3\n')
    done = crm(config, "orders", "import", str(path), ok=False)
    # A quoted field spans lines 2-3: the bad record after it starts on line 4.
    assert f"{path}:4: amount: '1.234' has more decimals than the currency has (2)" \
        in done.stderr, done.stderr
    b1 = await Order.get(number="B-1")
    assert b1.customer_id == ann.customer_id
    # Ann's customer gets no phone from the shop's row; a new customer gets the row's own
    # addresses, and no more from a later row.
    assert not await Identity.exists(address="+12025550199")
    b3 = await Order.get(number="B-3")
    assert sorted(await Identity.filter(customer_id=b3.customer_id).values_list(
        "address", flat=True)) == ["+12025550177", "new@example.com"]
