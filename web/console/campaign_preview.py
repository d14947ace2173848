"""A campaign's preview as the console shows it, in the editor (as it is written) and on the
campaign's page: who it reaches on which channel, and each message as its channel shows it,
written for one customer of the segment by the engine's own renderer (crm/campaigns).

- Telegram: its HTML written again as the page's (web/console/telegram_html.py), in a bubble,
  with its link buttons;
- email: the subject, and the HTML part in an `<iframe sandbox srcdoc>`: no script runs in it,
  it cannot reach the console (no same origin), links in it go nowhere;
- SMS: the text with its segment count and encoding (crm/sms_encoding.py), and the
  characters that force UCS-2.

A srcdoc frame takes the page's Content-Security-Policy: pages with a mail preview allow
inline styles (`MAIL_CSP`) so the mail's own look shows there. Scripts stay our files only, and
images our own or data: (a mail's remote images do not load in the preview: no tracker is
told that a marketer opened it).
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from crm.campaigns.service import CampaignPreview
from crm.sms_encoding import Encoding, non_gsm_characters
from web.console import render
from web.console.telegram_html import as_page

MAIL_CSP = render.CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def with_mail_styles(response: web.Response) -> web.Response:
    response.headers["Content-Security-Policy"] = MAIL_CSP
    return response


@functools.cache
def zones() -> tuple[str, ...]:
    """Time zone names for the pickers."""
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def _buttons(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for variant in spec.get("variants", []):
        telegram = variant.get("telegram") or {}
        out[str(variant.get("name", "A"))] = [str(b.get("text", ""))
                                              for b in telegram.get("buttons", [])]
    return out


def context(preview: CampaignPreview | None, spec: Mapping[str, Any] | None,
            error: str | None = None) -> dict[str, Any]:
    """What campaign_preview.html shows."""
    if preview is None:
        return {"preview": None, "preview_error": error, "variants": [], "items": {}}
    buttons = _buttons(spec or {})
    items: dict[str, list[dict[str, Any]]] = {}
    for s in preview.samples:
        item: dict[str, Any] = {"channel": s.channel, "variant": s.variant,
                                "subject": s.subject, "text": s.text, "html": s.html}
        if s.channel == "telegram":
            item["page"] = as_page(s.html or s.text)
            item["buttons"] = buttons.get(s.variant, [])
        if s.channel == "sms":
            item["segments"], item["encoding"] = s.sms_segments, s.sms_encoding
            item["forcing"] = "".join(non_gsm_characters(s.text))[:40] \
                if s.sms_encoding == Encoding.UCS2.value else ""
        items.setdefault(s.variant, []).append(item)
    return {"preview": preview, "preview_error": error, "variants": list(items),
            "items": items}
