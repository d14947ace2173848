"""Telegram's HTML as a web page shows it: the console's preview of a campaign's Telegram message.

Telegram's parse mode knows a few tags (bold, italic, underline, strikethrough, spoiler, links,
code, pre, blockquote) and nothing else. The message here was already rendered by the engine's
renderer and checked against that list, but it is still markup a person wrote, so it is never
put in the page as it is: it is parsed and written again, tag by known tag, with no attribute
but a link's address (http, https, tg and mailto only), every text escaped. Anything else is
dropped, its text kept. Pure: no I/O.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from urllib.parse import urlsplit

from markupsafe import Markup

# Telegram's tag -> the tag the page writes (its synonyms are one tag there too).
_TAGS = {"b": "b", "strong": "b", "i": "i", "em": "i", "u": "u", "ins": "u", "s": "s",
         "strike": "s", "del": "s", "code": "code", "pre": "pre", "blockquote": "blockquote",
         "tg-spoiler": "span", "a": "a"}
_SCHEMES = ("http", "https", "tg", "mailto")


def _safe_href(value: str | None) -> str | None:
    if not value:
        return None
    url = value.strip()
    scheme = urlsplit(url).scheme.lower()
    return url if scheme in _SCHEMES else None


class _Rewrite(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []  # what the page closes, in order

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        mine = _TAGS.get(tag)
        if mine is None:
            self.open.append("")
            return
        if tag == "a":
            href = _safe_href(dict(attrs).get("href"))
            self.out.append(f'<a href="{html.escape(href, quote=True)}" rel="noopener '
                            'noreferrer nofollow" target="_blank">' if href else "<a>")
        elif tag == "tg-spoiler":
            self.out.append('<span class="tg-spoiler">')
        else:
            self.out.append(f"<{mine}>")
        self.open.append(mine)

    def handle_endtag(self, tag: str) -> None:
        if not self.open:
            return
        mine = self.open.pop()
        if mine:
            self.out.append(f"</{mine}>")

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))

    def close(self) -> None:
        super().close()
        while self.open:  # what the message left open is closed at its end
            mine = self.open.pop()
            if mine:
                self.out.append(f"</{mine}>")


def as_page(text: str) -> Markup:
    """Telegram HTML → safe HTML for the console (line breaks kept by the page's CSS)."""
    parser = _Rewrite()
    parser.feed(text)
    parser.close()
    return Markup("".join(parser.out))
