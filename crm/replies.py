"""Canned replies: ready answers a manager sends with one word (`/r KEY`, the console later).

Each key has variants per language ("" is the one for every other language); the customer's
language picks the variant. The text is a template (crm/templates.py) with `customer` (name,
first_name, language, id), `manager` (name) and `company` to fill in, rendered in the sandbox
and handed to the send as plain text and, for a reply written in Telegram's HTML, as HTML too:
each channel then shows what it can (Telegram and email the HTML, SMS the plain text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from crm.errors import CrmError, NotFound
from crm.i18n import LANGUAGES, Phrase
from crm.models import AuditLog, CannedReply, Customer, Manager
from crm.templates import Rendered, TemplateProblem, render

_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
SAMPLE = {"customer": {"id": 1, "name": "Ann Example", "first_name": "Ann", "language": "en"},
          "manager": {"name": "Bob"}, "company": "our team"}


def normalize_key(key: str) -> str:
    cleaned = key.strip().lower()
    if not _KEY.match(cleaned):
        raise CrmError(Phrase("reply_bad_key", key=repr(key)))
    return cleaned


def _language(language: str | None) -> str:
    lang = (language or "").strip().lower()
    if lang and lang not in LANGUAGES:
        raise CrmError(f"{language!r} is not a language we have: use {', '.join(LANGUAGES)}")
    return lang


def context(customer: Customer, manager: Manager | None, company: str) -> dict[str, Any]:
    """What a template may use: plain values only (the sandbox sees no model object)."""
    name = customer.name or ""
    return {"customer": {"id": customer.id, "name": name,
                         "first_name": name.split()[0] if name.split() else "",
                         "language": customer.language or ""},
            "manager": {"name": manager.name if manager else ""}, "company": company}


@dataclass(frozen=True, slots=True)
class ReplyLine:
    key: str
    languages: list[str]
    preview: str


class CannedReplies:
    def __init__(self, company: str, default_language: str) -> None:
        self.company = company
        self.default_language = default_language

    async def add(self, key: str, text: str, *, language: str | None = None,
                  html: bool = False, actor: str = "cli") -> CannedReply:
        """Add a reply or replace one variant of it; the text is checked by rendering it."""
        key, lang = normalize_key(key), _language(language)
        if not text.strip():
            raise CrmError("a canned reply needs some text")
        try:
            render(text, {**SAMPLE, "company": self.company}, html_source=html)
        except TemplateProblem as e:
            raise CrmError(f"{key}: {e} (variables: customer.name, customer.first_name, "
                           "customer.language, customer.id, manager.name, company)") from None
        row = await CannedReply.filter(key=key, language=lang).first()
        if row is not None:
            row.text, row.html, row.created_by = text, html, actor
            await row.save(update_fields=["text", "html", "created_by", "updated_at"])
        else:
            try:
                row = await CannedReply.create(key=key, language=lang, text=text, html=html,
                                               created_by=actor)
            except IntegrityError:  # added at the same moment elsewhere: replace that one
                return await self.add(key, text, language=language, html=html, actor=actor)
        await AuditLog.create(actor=actor, action="reply.saved",
                              detail={"key": key, "language": lang})
        return row

    async def remove(self, key: str, *, language: str | None = None,
                     actor: str = "cli") -> int:
        key = normalize_key(key)
        query = CannedReply.filter(key=key)
        if language is not None:
            query = query.filter(language=_language(language))
        removed = await query.delete()
        if not removed:
            raise NotFound(f"no canned reply {key}" + (f" in {language}" if language else ""))
        await AuditLog.create(actor=actor, action="reply.removed",
                              detail={"key": key, "language": language})
        return int(removed)

    async def list(self) -> list[ReplyLine]:
        rows = await CannedReply.all().order_by("key", "language")
        out: dict[str, ReplyLine] = {}
        for row in rows:
            line = out.setdefault(row.key, ReplyLine(row.key, [], ""))
            line.languages.append(row.language or "*")
        for key, line in out.items():
            first = next(r for r in rows if r.key == key)
            preview = " ".join(first.text.split())
            out[key] = ReplyLine(key, line.languages,
                                 preview if len(preview) <= 60 else preview[:59] + "…")
        return list(out.values())

    async def pick(self, key: str, language: str | None) -> CannedReply:
        """The variant for `language`: its own, else the one for every language, else the
        default language's, else any."""
        key = normalize_key(key)
        rows = {r.language: r for r in await CannedReply.filter(key=key)}
        if not rows:
            raise NotFound(Phrase("reply_unknown", key=key))
        for lang in ((language or "").lower(), "", self.default_language, "en"):
            if lang in rows:
                return rows[lang]
        return next(iter(rows.values()))

    async def render_for(self, key: str, customer: Customer,
                         manager: Manager | None) -> tuple[CannedReply, Rendered]:
        row = await self.pick(key, customer.language)
        try:
            return row, render(row.text, context(customer, manager, self.company),
                               html_source=row.html)
        except TemplateProblem as e:
            raise CrmError(Phrase("reply_broken", key=row.key, reason=str(e))) from None
