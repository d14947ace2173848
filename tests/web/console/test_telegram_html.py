"""Telegram's HTML written again for the console's preview: its tags as Telegram shows them,
nothing else, no attribute but a safe link, every text escaped."""

from __future__ import annotations

import pytest

from web.console.telegram_html import as_page


def test_telegrams_tags_show_as_telegram_shows_them() -> None:
    shown = as_page('<b>Bold</b> <strong>strong</strong> <i>it</i> <em>em</em> <u>u</u> '
                    '<s>s</s> <del>d</del> <code>x = 1</code> <pre>block</pre> '
                    '<tg-spoiler>secret</tg-spoiler> <blockquote>quoted</blockquote> '
                    '<a href="https://shop.example/?a=1&amp;b=2">Shop</a>\nnext line')
    assert shown == (
        '<b>Bold</b> <b>strong</b> <i>it</i> <i>em</i> <u>u</u> <s>s</s> <s>d</s> '
        '<code>x = 1</code> <pre>block</pre> <span class="tg-spoiler">secret</span> '
        '<blockquote>quoted</blockquote> <a href="https://shop.example/?a=1&amp;b=2" '
        'rel="noopener noreferrer nofollow" target="_blank">Shop</a>\nnext line')


@pytest.mark.parametrize(("written", "shown"), [
    ('<b onmouseover="alert(1)">hi</b>', "<b>hi</b>"),
    ('<a href="javascript:alert(1)">x</a>', "<a>x</a>"),
    ('<a href=" JAVASCRIPT:alert(1)">x</a>', "<a>x</a>"),
    ('<a href="data:text/html,<script>alert(1)</script>">x</a>', "<a>x</a>"),
    ("<script>alert(1)</script>", "alert(1)"),
    ('<img src=x onerror="alert(1)">', ""),
    ("&lt;img src=x onerror=alert(1)&gt;", "&lt;img src=x onerror=alert(1)&gt;"),
    ("<b>left open", "<b>left open</b>"),
    ("a &amp; b &quot;q&quot;", 'a &amp; b "q"'),
    ('<a href="tg://user?id=1">me</a>',
     '<a href="tg://user?id=1" rel="noopener noreferrer nofollow" target="_blank">me</a>'),
])
def test_nothing_else_gets_through(written: str, shown: str) -> None:
    assert as_page(written) == shown
