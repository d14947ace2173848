"""One recipient's campaign message on one channel: personalised, escaped, tracked, stoppable.

The texts are templates rendered in the sandbox (crm/templates.py, compiled once per campaign):
Telegram's in its HTML (what a customer wrote, their name, is escaped), an email's HTML as HTML
(escaped too) and its text part plain, SMS plain. Links written in the campaign (and its
buttons) go through our `/l/<token>` redirect, one token per person and link, so a click is
counted for that person; the unsubscribe link `/u/<token>` is never tracked. Every message says
how to stop: `/stop` in Telegram, STOP by SMS, and by email a link in the body plus the
List-Unsubscribe headers (https and mailto) with One-Click (RFC 8058), which the mail channel
writes from `options["unsubscribe_url"]`.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm.campaigns.spec import CampaignSpec, EmailContent, SmsContent, TelegramContent
from crm.i18n import pick_language, t
from crm.links import sign
from crm.templates import render
from crm.types import Attachment, Channel, OutboundMessage

LINK_PURPOSE = "campaign-link"
UNSUBSCRIBE_PURPOSE = "unsubscribe"
EMAIL_LIMIT = 500_000
_URL = re.compile(r"https?://[^\s<>\"'{}]+")


# A customer without orders: `{% if last_order.number %}` works, `{{ last_order.number }}` is "".
NO_ORDER = {"number": "", "status": "", "amount": "", "currency": ""}


@dataclass(frozen=True, slots=True)
class Person:
    """What a message may say about its recipient (plain values: the sandbox sees no model)."""

    customer_id: int
    name: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)
    lead_source: str | None = None
    last_order: dict[str, Any] = field(default_factory=lambda: dict(NO_ORDER))


SAMPLE = Person(0, "Ann Example", "en", ("vip",), {"plan": "gold"}, "instagram",
                {"number": "A-1042", "status": "shipped", "amount": "49.90", "currency": "EUR"})


def context(person: Person, company: str, campaign: str) -> dict[str, Any]:
    name = person.name or ""
    return {"customer": {"id": person.customer_id, "name": name,
                         "first_name": name.split()[0] if name.split() else "",
                         "language": person.language or "", "tags": list(person.tags),
                         "attributes": dict(person.attributes),
                         "lead_source": person.lead_source or ""},
            "last_order": person.last_order, "company": company, "campaign": campaign}


def tracked_urls(spec: CampaignSpec) -> tuple[str, ...]:
    """The links written in the campaign (its texts and buttons), each once, in order: a
    token names a link by its place here."""
    found: list[str] = []
    for variant in spec.variants:
        for content in (variant.telegram, variant.email, variant.sms):
            if content is None:
                continue
            texts = [v for v in content.model_dump().values() if isinstance(v, str)]
            texts += [b.url for b in getattr(content, "buttons", [])]
            for text in texts:
                for match in _URL.finditer(text):
                    # As the reader's browser will have it: HTML writes & as &amp;.
                    url = html_lib.unescape(match.group(0).rstrip(".,;:!?)"))
                    if url not in found:
                        found.append(url)
    return tuple(found)


class Renderer:
    """Makes the messages of one campaign; handed the signing key and the links' expiry."""

    def __init__(self, spec: CampaignSpec, campaign_id: int, *, company: str, public_url: str,
                 key: bytes, expires_at: datetime, paid_broadcast: bool = False) -> None:
        self.spec = spec
        self.campaign_id = campaign_id
        self.company = company
        self.base = public_url.rstrip("/")
        self.key = key
        self.expires_at = expires_at
        self.paid_broadcast = paid_broadcast
        # The last order is read for a batch only when a template asks for it.
        self.uses_orders = "last_order" in json.dumps(spec.to_json())
        urls = tracked_urls(spec) if spec.track_links else ()
        # Longest first: a link that begins another is replaced only where it stands alone.
        self.links = sorted(enumerate(urls), key=lambda p: -len(p[1]))

    def unsubscribe_url(self, recipient_id: int) -> str:
        token = sign(self.key, UNSUBSCRIBE_PURPOSE, str(recipient_id), self.expires_at)
        return f"{self.base}/u/{token}"

    def _track(self, text: str, recipient_id: int, escaped: bool = False) -> str:
        for index, url in self.links:
            # In HTML a link may stand as written or with its & escaped.
            targets = {url, html_lib.escape(url, quote=True)} if escaped else {url}
            if not any(target in text for target in targets):
                continue
            token = sign(self.key, LINK_PURPOSE, f"{recipient_id}.{index}", self.expires_at)
            for target in targets:
                text = text.replace(target, f"{self.base}/l/{token}")
        return text

    def message(self, channel: Channel, variant: str, person: Person, recipient_id: int,
                address: str) -> OutboundMessage:
        """The message; TemplateProblem when a template cannot be rendered for this person."""
        content = self.spec.variant(variant).content(channel.value)
        ctx = context(person, self.company, self.spec.name)
        lang = pick_language(person.language)
        options: dict[str, Any] = {"campaign_id": self.campaign_id}
        if isinstance(content, TelegramContent):
            body = render(content.text, ctx, html_source=True)
            assert body.html is not None
            stop = html_lib.escape(t("campaign_stop_telegram", lang), quote=False)
            markup = f"{self._track(body.html, recipient_id, escaped=True)}\n\n<i>{stop}</i>"
            plain = f"{body.text}\n\n{t('campaign_stop_telegram', lang)}"
            if content.buttons:
                options["buttons"] = [{"text": b.text, "url": self._track(b.url, recipient_id)}
                                      for b in content.buttons]
            if self.paid_broadcast:
                options["paid_broadcast"] = True
            files = (Attachment(**content.image_file),) if content.image_file else ()
            return OutboundMessage(channel, address, plain, html=markup, options=options,
                                   attachments=files, language=lang)
        if isinstance(content, EmailContent):
            unsubscribe = self.unsubscribe_url(recipient_id)
            subject = render(content.subject, ctx).text.replace("\n", " ")
            text = render(content.text, ctx, limit=EMAIL_LIMIT).text
            text = f"{self._track(text, recipient_id)}\n\n-- \n" \
                   f"{t('campaign_stop_email', lang, company=self.company, url=unsubscribe)}"
            page_html: str | None = None
            if content.html:
                page = render(content.html, ctx, html_source=True, telegram=False,
                              limit=EMAIL_LIMIT).html or ""
                page_html = _with_footer(self._track(page, recipient_id, escaped=True),
                                         self._html_footer(unsubscribe, lang))
            options.update(unsubscribe_url=unsubscribe, list_unsubscribe=True)
            return OutboundMessage(channel, address, text, subject=subject, html=page_html,
                                   options=options, language=lang)
        assert isinstance(content, SmsContent)
        text = self._track(render(content.text, ctx).text, recipient_id)
        return OutboundMessage(channel, address, f"{text}\n{t('campaign_stop_sms', lang)}",
                               options=options, language=lang)

    def _html_footer(self, url: str, lang: str) -> str:
        why = html_lib.escape(t("campaign_why_email", lang, company=self.company), quote=False)
        label = html_lib.escape(t("campaign_unsubscribe", lang), quote=False)
        return (f'<p style="color:#6b7280;font-size:12px">{why} '
                f'<a href="{html_lib.escape(url, quote=True)}">{label}</a></p>')


def _with_footer(page: str, footer: str) -> str:
    at = page.lower().rfind("</body>")
    return f"{page[:at]}{footer}\n{page[at:]}" if at >= 0 else f"{page}\n{footer}"
