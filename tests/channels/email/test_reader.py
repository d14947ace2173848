"""The reader's pure parts: FETCH parsing, backoff schedule, IMAP dates; attachments on disk."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from pathlib import Path

from channels.email.attachments import AttachmentStore
from channels.email.parsing import MailPart
from channels.email.reader import imap_date, parse_fetch, retry_delay
from crm.files import FileStore


def test_parse_fetch() -> None:
    lines = [b"1 FETCH (UID 7 BODY[] {3}", bytearray(b"abc"), b")",
             b"2 FETCH (BODY[] {2}", bytearray(b"xy"), b" UID 9)", b"Fetch completed."]
    assert parse_fetch(lines) == [(7, b"abc"), (9, b"xy")]  # type: ignore[arg-type]


def test_backoff_grows_and_is_capped() -> None:
    rnd = random.Random(1)
    delays = [retry_delay(n, 30, 900, rnd) for n in range(1, 9)]
    assert 22.5 <= delays[0] <= 37.5
    assert all(b > a for a, b in itertools.pairwise(delays))
    assert max(delays) <= 900 * 1.25


def test_imap_date_is_locale_free() -> None:
    assert imap_date(datetime(2025, 3, 5, tzinfo=UTC)) == "5-Mar-2025"


def test_attachment_store_is_content_addressed(tmp_path: Path) -> None:
    store = AttachmentStore(FileStore(tmp_path, max_bytes=10))
    a = store.save(MailPart("a.txt", "text/plain", b"same"))
    b = store.save(MailPart("b.txt", "text/plain", b"same"))
    assert a.path == b.path and Path(str(a.path)).read_bytes() == b"same"
    big = store.save(MailPart("big.bin", "application/octet-stream", b"x" * 11))
    assert big.path is None and big.size == 11 and "over the limit" in big.meta["note"]
