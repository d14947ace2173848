"""The SMS gateways' HTTP callbacks: inbound SMS and delivery reports, Kannel's and Twilio's.

Every endpoint requires `?token=` equal to [sms] inbound_token, and Twilio's also a valid
X-Twilio-Signature; a request failing either gets 403 and changes nothing. The answer comes only
after what arrived was committed, so a gateway that sees an error sends it again (and dedupe
stores it once).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import structlog
from aiohttp import web

from channels.sms import inbound, reports
from channels.sms.media_in import TwilioMedia
from channels.sms.receiver import ReportOutcome, SmsReceiver
from channels.sms.signature import valid_twilio_signature
from crm.config import Settings
from crm.errors import InvalidAddress

log = structlog.get_logger(__name__)

KANNEL_INBOUND = "/sms/kannel/inbound"
KANNEL_DLR = "/sms/kannel/dlr"
TWILIO_INBOUND = "/sms/twilio/inbound"
TWILIO_STATUS = "/sms/twilio/status"

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _forbidden(why: str, request: web.Request) -> web.Response:
    log.warning("sms.webhook_refused", path=request.path, why=why, remote=request.remote)
    return web.Response(status=403, text=f"forbidden: {why}\n")


def _bad(why: str, request: web.Request) -> web.Response:
    log.warning("sms.webhook_bad_request", path=request.path, why=why)
    return web.Response(status=400, text=f"bad request: {why}\n")


def _outbox_id(query: Mapping[str, str]) -> int | None:
    try:
        return int(query["ob"])
    except (KeyError, ValueError):
        return None


class SmsWebhooks:
    def __init__(self, settings: Settings, receiver: SmsReceiver,
                 media: TwilioMedia | None = None) -> None:
        self.settings = settings
        self.sms = settings.sms
        self.receiver = receiver
        self.media = media

    def mount(self, app: web.Application) -> None:
        if self.sms.provider == "kannel":
            app.router.add_get(KANNEL_INBOUND, self.kannel_inbound)
            app.router.add_post(KANNEL_INBOUND, self.kannel_inbound)
            app.router.add_get(KANNEL_DLR, self.kannel_dlr)
        elif self.sms.provider == "twilio":
            app.router.add_post(TWILIO_INBOUND, self.twilio_inbound)
            app.router.add_post(TWILIO_STATUS, self.twilio_status)

    def _token_ok(self, request: web.Request) -> bool:
        given = request.query.get("token", "")
        return bool(self.sms.inbound_token) and hmac.compare_digest(
            given.encode(), self.sms.inbound_token.encode())

    # Kannel ----------------------------------------------------------------------------------

    async def kannel_inbound(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return _forbidden("wrong or missing token", request)
        params: Mapping[str, str] = request.query
        if request.method == "POST":
            # post-url: the text is the body; sender, receiver and time in the URL or in
            # Kannel's X-Kannel-* headers.
            params = inbound.kannel_post_fields(request.query, request.headers,
                                                await request.read(), request.charset)
        try:
            msg = inbound.kannel_message(params, self.sms.default_region)
        except (ValueError, InvalidAddress) as e:
            return _bad(str(e), request)
        await self.receiver.receive(msg)
        return web.Response(text="")  # empty: with max-messages = 0 Kannel sends no reply

    async def kannel_dlr(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return _forbidden("wrong or missing token", request)
        try:
            report = reports.kannel_report(request.query)
        except ValueError as e:
            return _bad(str(e), request)
        return await self._report(report, _outbox_id(request.query), request)

    # Twilio ----------------------------------------------------------------------------------

    async def _twilio_form(self, request: web.Request) -> Mapping[str, str] | web.Response:
        if not self._token_ok(request):
            return _forbidden("wrong or missing token", request)
        form = await request.post()
        pairs = [(k, v) for k, v in form.items() if isinstance(v, str)]
        url = self.settings.http.public_url.rstrip("/") + request.raw_path
        if not valid_twilio_signature(url, pairs, self.sms.twilio.auth_token,
                                      request.headers.get("X-Twilio-Signature")):
            return _forbidden(f"X-Twilio-Signature does not match {url}", request)
        return dict(pairs)

    async def twilio_inbound(self, request: web.Request) -> web.Response:
        form = await self._twilio_form(request)
        if isinstance(form, web.Response):
            return form
        try:
            msg = inbound.twilio_message(form, self.sms.default_region)
        except (ValueError, InvalidAddress) as e:
            return _bad(str(e), request)
        if self.media is not None:  # an MMS: its files into the store before it is stored
            msg = await self.media.fetch(msg)
        # With Advanced Opt-Out, Twilio acted on STOP/START/HELP itself and says which.
        await self.receiver.receive(msg, gateway_keyword=form.get("OptOutType") or None)
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def twilio_status(self, request: web.Request) -> web.Response:
        form = await self._twilio_form(request)
        if isinstance(form, web.Response):
            return form
        try:
            report = reports.twilio_report(form)
        except ValueError as e:
            return _bad(str(e), request)
        return await self._report(report, _outbox_id(request.query), request)

    async def _report(self, report: reports.DeliveryReport | None, outbox_id: int | None,
                      request: web.Request) -> web.Response:
        if report is None:
            return web.Response(text="")
        outcome = await self.receiver.report(report, outbox_id)
        if outcome is ReportOutcome.NOT_YET:
            return web.Response(status=503, text="the message is still being recorded\n",
                                headers={"Retry-After": "5"})
        if outcome is ReportOutcome.UNKNOWN:
            log.info("sms.report_unknown", external_id=report.external_id,
                     status=report.status.value, path=request.path)
        return web.Response(text="")
