"""`crm segments …` and `crm campaigns …` through a real subprocess, with the README's example
files: create, list, preview, test, schedule, pause, resume, cancel, stats; a bad file is
refused naming its line and field, and nothing is stored."""

from __future__ import annotations

import json
from pathlib import Path

from crm.models import Campaign, Customer, Identity, Manager, Outbox, Segment
from crm.types import CampaignState, Channel, Priority, Role
from tests.crm.test_cli import config, crm
from tests.support.reports_data import seed

__all__ = ["config"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def _customers() -> None:
    for n, (name, tags, addresses) in enumerate((
            ("Анна Петрова", ["vip"], {Channel.TELEGRAM: "5001", Channel.EMAIL: "anna@x.ru"}),
            ("Борис", ["vip"], {Channel.SMS: "+79161234567"}),
            ("Carl", ["vip"], {Channel.EMAIL: "carl@x.org"}))):
        customer = await Customer.create(name=name, tags=tags, language="ru" if n < 2 else "en")
        for channel, address in addresses.items():
            await Identity.create(customer_id=customer.id, channel=channel, address=address)


async def test_segments_from_the_example_file(config: Path) -> None:
    await _customers()
    out = crm(config, "segments", "create", str(EXAMPLES / "segment.toml")).stdout
    assert "saved segment 'ru-vip': 2 customers match now" in out
    again = crm(config, "segments", "create", str(EXAMPLES / "segment.toml"), ok=False)
    assert again.returncode == 1 and "--replace" in again.stderr
    crm(config, "segments", "create", str(EXAMPLES / "segment.toml"), "--replace")
    assert "ru-vip" in crm(config, "segments", "list").stdout
    preview = crm(config, "segments", "preview", "ru-vip").stdout
    assert "2 customers match 'ru-vip'" in preview and "Анна Петрова" in preview
    assert "email, telegram" in preview and "Carl" not in preview


async def test_an_rfm_segment_from_the_example_file(config: Path, tmp_path: Path) -> None:
    await seed()  # the reports' hand-worked orders of January to March 2026
    # Ten years back from today rather than one, so the test does not age out of 2026.
    example = (EXAMPLES / "segment-rfm.toml").read_text()
    assert "rfm_days = 365" in example
    file = tmp_path / "win-back.toml"
    file.write_text(example.replace("rfm_days = 365", "rfm_days = 3650"))
    out = crm(config, "segments", "create", str(file)).stdout
    # Dina at risk; Gleb and Egor hibernating (tests/crm/reports/test_reports.py).
    assert "saved segment 'win-back': 3 customers match now" in out
    preview = crm(config, "segments", "preview", "win-back").stdout
    assert all(name in preview for name in ("Dina", "Gleb", "Egor")) and "Ann" not in preview
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[filter]\nrfm = ["loyal", "whales"]\n')
    done = crm(config, "segments", "create", str(bad), ok=False)
    assert done.returncode == 1 and f"{bad}:3: filter.rfm: 'whales' is not an RFM segment" \
        in done.stderr


async def test_a_bad_file_names_its_line_and_field_and_stores_nothing(config: Path,
                                                                     tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[filter]\nlanguage = "ru"\ncolour = "red"\n')
    done = crm(config, "segments", "create", str(bad), ok=False)
    assert done.returncode == 1
    assert f"{bad}:4: filter.colour: unknown condition" in done.stderr
    await Segment.create(name="ru-vip", filters={"language": "ru"})
    campaign = tmp_path / "c.toml"
    campaign.write_text((EXAMPLES / "campaign.toml").read_text().replace(
        "{{ customer.first_name }}, весенняя", "{{ customer.nickname }}, весенняя"))
    done = crm(config, "campaigns", "create", str(campaign), ok=False)
    assert done.returncode == 1
    assert f"{campaign}:17: variants[0].email.subject: the template cannot be rendered" \
        in done.stderr and "nickname" in done.stderr
    assert not await Campaign.exists()


async def test_a_campaign_from_create_to_stats(config: Path) -> None:
    await _customers()
    await Manager.create(telegram_user_id=4242, name="Mia", role=Role.MARKETER)
    crm(config, "segments", "create", str(EXAMPLES / "segment.toml"))
    out = crm(config, "campaigns", "create", str(EXAMPLES / "campaign.toml")).stdout
    assert "created campaign #1 'Spring sale' (draft)" in out
    preview = crm(config, "campaigns", "preview", "1").stdout
    assert "segment: 2 customers match now" in preview
    assert "reach: telegram 1, email 0, sms 1, no_consent 0, unreachable 0" in preview
    assert "--- variant A, sms (2 segment(s), ucs2)" in preview  # Cyrillic: UCS-2
    assert "Отписаться: ответьте СТОП." in preview and "/stop" in preview
    assert "Subject: Анна, весенняя распродажа" in preview

    test = crm(config, "campaigns", "test", "1", "--marketer", "4242").stdout
    assert test.count("queued test") == 3
    rows = await Outbox.filter(address="4242").order_by("id")
    assert len(rows) == 3 and {r.priority for r in rows} == {Priority.LIVE}
    assert "Mia" in str(rows[0].payload) and "sms" in str(rows[2].payload)

    scheduled = crm(config, "campaigns", "schedule", "1", "--at", "2030-04-01 10:00").stdout
    assert "scheduled for 2030-04-01 07:00 UTC" in scheduled  # Moscow is UTC+3
    listing = crm(config, "campaigns", "list").stdout
    assert "scheduled" in listing and "Spring sale" in listing
    assert "paused" in crm(config, "campaigns", "pause", "1").stdout
    assert (await Campaign.get(id=1)).state is CampaignState.PAUSED
    assert "is scheduled" in crm(config, "campaigns", "resume", "1").stdout
    assert "cancelled" in crm(config, "campaigns", "cancel", "1").stdout
    again = crm(config, "campaigns", "resume", "1", ok=False)
    assert again.returncode == 1 and "only a paused or missed campaign" in again.stderr
    stats = json.loads(crm(config, "campaigns", "stats", "1", "--json").stdout)
    assert stats["state"] == "cancelled" and stats["total"]["recipients"] == 0
    assert "Campaign #1 'Spring sale': cancelled" in crm(config, "campaigns", "stats",
                                                         "1").stdout


async def test_the_a_b_example_is_a_valid_campaign(config: Path) -> None:
    await _customers()
    crm(config, "segments", "create", str(EXAMPLES / "segment.toml"))
    crm(config, "campaigns", "create", str(EXAMPLES / "campaign-ab.toml"))
    preview = crm(config, "campaigns", "preview", "1").stdout
    assert "A/B: variants A, B: 20% test, the best click rate after 4h" in preview
    assert "--- variant B, email" in preview
