"""Mail text for the managers' view: HTML to plain text, quoted history and signatures trimmed.

Pure functions over strings. The full original is kept elsewhere (Message.meta); what these return
is only what a manager needs to read first.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

_BLOCK = frozenset({
    "p", "div", "section", "article", "header", "footer", "table", "tr", "ul", "ol", "dl",
    "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr", "form", "fieldset", "address", "center",
})
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript", "svg"})


class _TextExtractor(HTMLParser):
    """Collects readable text; blockquotes become `> ` lines so quote trimming can find them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.quote = 0
        self.pre = 0
        self.href: str | None = None
        self.link_text: list[str] = []

    def _newline(self) -> None:
        self.out.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag == "br":
            self._newline()
        elif tag == "blockquote":
            self.quote += 1
            self._newline()
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "a":
            self.href = dict(attrs).get("href")
            self.link_text = []
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(f"[{alt}]")
        if tag == "pre":
            self.pre += 1
        if tag in _BLOCK:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self._newline()
        elif tag == "a":
            text = "".join(self.link_text).strip()
            href = self.href or ""
            if href.startswith(("http://", "https://")) and href != text and text:
                self.out.append(f" ({href})")
            self.href = None
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _BLOCK:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            data = re.sub(r"[ \t\r\n\f]+", " ", data)
        if self.href is not None:
            self.link_text.append(data)
        if self.quote:
            data = data.replace("\n", "\n" + "> " * self.quote)
            if not self.out or self.out[-1].endswith("\n"):
                data = "> " * self.quote + data.lstrip()
        self.out.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML mail body."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient; this only guards against the unexpected
        return re.sub(r"<[^>]+>", " ", unescape(html)).strip()
    lines = [line.strip() for line in "".join(parser.out).replace("\xa0", " ").splitlines()]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


# Lines that start the quoted history of a reply, in the clients our customers use.
_QUOTE_HEADERS = (
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*Am\b.{0,300}\bschrieb.{0,40}:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*Le\b.{0,300}\ba écrit\s*:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^.{0,300}\b(написал|написала|написал\(а\)|пишет)\s*:\s*$",
               re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*-{2,}\s*(Original Message|Forwarded message|Исходное сообщение|"
               r"Пересылаемое сообщение|Пересланное сообщение)\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*_{20,}\s*$"),  # Outlook's separator line
)
# How a wrapped attribution line begins: "On Mon…", "Am…", "13.01.2025…", "пн, 13 янв…".
_ATTRIBUTION_START = re.compile(r"^\s*(On|Am|Le|El|Il|Op|В|\d|\w{1,12},\s*\d)", re.IGNORECASE)
_HEADER_BLOCK = re.compile(r"^\s*\*?(From|От|Von|De)\s*:\*?\s", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^\s*\*?(Sent|Date|To|Subject|Cc|Отправлено|Дата|Кому|Тема|"
                          r"Gesendet|An|Betreff|Envoyé|À|Objet)\s*:", re.IGNORECASE)
_SIGNATURE = (
    re.compile(r"^-- ?$"),  # the standard delimiter "-- "
    re.compile(r"^\s*(Sent from my|Get Outlook for|Отправлено с|Отправлено из|"
               r"Sent from Mail for|Sent from Yahoo Mail)\b", re.IGNORECASE),
)


def trim_reply(text: str) -> str:
    """The new part of a reply: quoted history and the signature cut off.

    When nothing would be left (a forward with no words of its own, a quote-only mail), the text
    is returned whole: trimming must never hide everything the customer sent.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    for i, line in enumerate(lines):
        if _starts_quote(lines, i):
            cut = i
            break
        if any(p.match(line) for p in _SIGNATURE):
            cut = i
            break
    kept = lines[:cut]
    # A trailing block of "> " lines (bottom-quoting without a header line).
    while kept and (kept[-1].lstrip().startswith(">") or not kept[-1].strip()):
        kept.pop()
    result = "\n".join(kept).strip()
    return result or text.strip()


def _starts_quote(lines: list[str], i: int) -> bool:
    line = lines[i]
    if not line.strip():
        return False
    # Attribution lines are often wrapped over two or three lines by the sender's client.
    for span in (1, 2, 3):
        chunk = lines[i:i + span]
        if span > 1 and (len(chunk) < span or not all(s.strip() for s in chunk)
                         or not _ATTRIBUTION_START.match(line)):
            break
        joined = " ".join(s.strip() for s in chunk)
        if any(p.match(joined) for p in _QUOTE_HEADERS):
            # Only a header if it is followed by a quote or ends the text (not a sentence
            # that happens to end in "wrote:").
            rest = [s for s in lines[i + span:] if s.strip()]
            return not rest or rest[0].lstrip().startswith(">") or span > 1 or \
                joined.strip().startswith(("-", "_")) or _looks_like_attribution(joined)
    if _HEADER_BLOCK.match(line):
        following = [s for s in lines[i + 1:i + 5] if s.strip()]
        return sum(bool(_HEADER_NEXT.match(s)) for s in following) >= 2
    return False


def _looks_like_attribution(line: str) -> bool:
    # "On Tue, 3 Jan 2025 at 10:00, Ann <ann@example.com> wrote:" carries a date or an address.
    return bool(re.search(r"\d{1,4}[:./-]\d{1,2}|@|\d{4}", line))
