"""Templates people write (canned replies; campaigns later), rendered in Jinja2's sandbox.

`ImmutableSandboxedEnvironment` with `StrictUndefined` (only then do `''.__class__`,
`|attr('__class__')` and the `.format` escapes raise SecurityError rather than render
silently); the `safe` filter is removed, so what a customer wrote (their name) can never be
let through as markup; the output is capped, since the sandbox does not limit `'a' * 10**7`.

A template is plain text, or Telegram's HTML (`html=True`: <b>, <i>, <a href="…">, …). Plain
renders with no escaping, for channels that show text as it is. HTML renders with autoescape on
(variables escaped, the template's own markup kept), and a plain version is made from it for
the channels that have no markup (SMS, the text part of a mail, the timeline).
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from crm.errors import CrmError

MAX_OUTPUT = 4000  # characters: one Telegram message (4096) with room to spare
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                 "tg-spoiler", "blockquote"}


class TemplateProblem(CrmError):
    """A template that cannot be used as written; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str  # plain text
    html: str | None = None  # Telegram's HTML, when the template is written in it


def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined,
                                        keep_trailing_newline=False)
    del env.filters["safe"]
    return env


_PLAIN = _environment(False)
_HTML = _environment(True)


@functools.lru_cache(maxsize=512)
def _compiled(html_source: bool, source: str) -> Template:
    # Compiling costs a thousand times a render: a campaign renders one template per person.
    return (_HTML if html_source else _PLAIN).from_string(source)


def render(source: str, context: Mapping[str, Any], *, html_source: bool = False,
           telegram: bool = True, limit: int = MAX_OUTPUT) -> Rendered:
    """Render a template; TemplateProblem with the reason when it cannot be.

    `telegram=False`: HTML for a mail (any tags), not checked against Telegram's few.
    """
    try:
        out = _compiled(html_source, source).render(**context)
    except TemplateError as e:  # includes SecurityError and UndefinedError
        raise TemplateProblem(f"the template cannot be rendered: {e.message or e}") from None
    out = out.strip()
    if len(out) > limit:
        raise TemplateProblem(f"the text comes out {len(out)} characters long; at most "
                              f"{limit} can be sent")
    if not html_source:
        return Rendered(out)
    if telegram:
        check_telegram_html(out)
    return Rendered(to_plain(out), out)


class _Check(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.plain: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.error = self.error or f"<{tag}> is not one of Telegram's tags " \
                                       f"({', '.join(sorted(TELEGRAM_TAGS))})"
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.error = self.error or f"</{tag}> closes nothing open"
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.plain.append(data)


def check_telegram_html(text: str) -> None:
    """TemplateProblem unless Telegram's HTML parse mode takes `text`."""
    if re.search(r"&(?!(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", text):
        raise TemplateProblem("a bare & in HTML: write &amp;amp; (or use a plain-text reply)")
    parser = _Check()
    parser.feed(text)
    parser.close()
    if parser.error is None and parser.stack:
        parser.error = f"<{parser.stack[-1]}> is never closed"
    if parser.error:
        raise TemplateProblem(f"the HTML cannot be sent by Telegram: {parser.error}")


def to_plain(markup: str) -> str:
    """Telegram HTML as plain text: tags dropped, entities read."""
    return html.unescape(re.sub(r"<[^>]*>", "", markup))
