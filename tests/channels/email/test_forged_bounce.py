"""A delivery report about no mail of ours marks nothing and lands with its real sender."""

from __future__ import annotations

from pathlib import Path

from channels.email.attachments import AttachmentStore
from channels.email.inbound import MailIngester
from crm.files import FileStore
from crm.models import Identity, Message
from crm.services import Core
from crm.types import Channel, InboundMessage

SAMPLE = Path(__file__).parent / "samples" / "bounce_dsn.eml"


async def test_forged_bounce_marks_nobody(core: Core, tmp_path: Path) -> None:
    # gone@example.org is a real customer of ours, who wrote to us once.
    victim = await core.timeline.ingest(InboundMessage(
        Channel.EMAIL, "<hello@example.org>", "gone@example.org", text="hi"))
    forged = SAMPLE.read_bytes().replace(b"MAILER-DAEMON@mx.example.net", b"attacker@evil.test")
    ingester = MailIngester(core, AttachmentStore(FileStore(str(tmp_path), 1024)), {"support@example.com"})
    await ingester.handle(forged, uid=1)

    identity = await Identity.get(channel=Channel.EMAIL, address="gone@example.org")
    assert identity.undeliverable_reason is None
    assert await Message.filter(customer_id=victim.customer_id).count() == 1
    report = await Message.get(external_id="bounce-1@mx.example.net")
    assert report.customer_id != victim.customer_id and report.automated
