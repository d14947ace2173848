"""Quote and signature trimming, HTML to text: pure functions."""

from __future__ import annotations

import pytest

from channels.email.text import html_to_text, trim_reply


@pytest.mark.parametrize(("text", "expected"), [
    ("Yes.\n\nOn Mon, 13 Jan 2025 at 10:00, Support <s@x.com> wrote:\n> old", "Yes."),
    ("Yes.\n\nOn Mon, 13 Jan 2025 at 10:00, Support\n<s@x.com> wrote:\n> old", "Yes."),
    ("Да.\n\n13.01.2025, 10:00, Support <s@x.com> написал:\n> old", "Да."),
    ("Ok\n\n-----Original Message-----\nFrom: a\nbody", "Ok"),
    ("Ok\n\n________________________________\nFrom: a\nSent: b\nTo: c\n", "Ok"),
    ("Fine\n-- \nAnn\nCEO", "Fine"),
    ("Fine\n\nSent from my iPhone", "Fine"),
    ("Fine\n\nОтправлено с iPhone", "Fine"),
    ("Top\n> quoted\n> more", "Top"),
    ("> only a quote", "> only a quote"),  # never trim everything away
    ("I wrote: this is fine.\nBye", "I wrote: this is fine.\nBye"),
    ("a\n> inline quote\nmy answer", "a\n> inline quote\nmy answer"),
])
def test_trim_reply(text: str, expected: str) -> None:
    assert trim_reply(text) == expected


def test_html_to_text() -> None:
    html = ("<html><head><title>t</title><style>x{}</style></head><body>"
            "<h1>Hi</h1><p>A&nbsp;line<br>next <a href='https://x.org/a'>link</a></p>"
            "<ul><li>one</li><li>two</li></ul><script>evil()</script>"
            "<blockquote>quoted<br>more</blockquote></body></html>")
    assert html_to_text(html) == ("Hi\n\nA line\nnext link (https://x.org/a)\n\n- one\n- two"
                                  "\n\n> quoted\n> more")
    assert trim_reply(html_to_text(html)).endswith("- two")
