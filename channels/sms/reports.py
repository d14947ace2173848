"""Delivery reports of the SMS gateways, as plain values. Pure: no I/O.

Kannel calls our dlr-url with its DLR code (1 delivered to the phone, 2 not delivered to the
phone, 4 queued on the SMSC, 8 accepted by the SMSC, 16 rejected by the SMSC) and the SMSC's
answer; Twilio posts MessageStatus and ErrorCode. A failure is permanent when it says the number
is invalid or unreachable for good, which marks the customer's SMS identity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from crm.types import DeliveryStatus


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    external_id: str
    status: DeliveryStatus
    error: str | None = None
    permanent: bool = False


# SMPP command_status codes that mean the destination itself is wrong.
_SMPP_BAD_DESTINATION = {0x0B, 0x33, 0x34}  # RINVDSTADR, RINVNUMDESTS, RINVDLNAME
_PERMANENT_WORDS = re.compile(
    r"invalid (destination|number|msisdn|subscriber)|unknown (subscriber|number)|"
    r"absent subscriber permanently|no such (number|subscriber)|not a mobile", re.I)

KANNEL_DLR = {1: DeliveryStatus.DELIVERED, 2: DeliveryStatus.FAILED, 8: DeliveryStatus.SENT,
              16: DeliveryStatus.FAILED}


def kannel_permanent(answer: str) -> bool:
    """Whether an SMSC's answer (`NACK/0x0000000b/Invalid Destination Address`) is final."""
    if _PERMANENT_WORDS.search(answer):
        return True
    for code in re.findall(r"0x([0-9a-fA-F]{1,8})", answer):
        if int(code, 16) in _SMPP_BAD_DESTINATION:
            return True
    return False


def kannel_report(query: Mapping[str, str]) -> DeliveryReport | None:
    """A Kannel dlr-url call (`id`, `status`=%d, `answer`=%A), or None when it changes nothing."""
    external_id = (query.get("id") or "").strip()
    try:
        code = int(query.get("status") or "")
    except ValueError:
        raise ValueError(f"not a Kannel DLR status: {query.get('status')!r}") from None
    if not external_id:
        raise ValueError("the delivery report has no message id")
    status = KANNEL_DLR.get(code)
    if status is None:
        return None  # 4: queued on the SMSC, no news for the customer's timeline
    answer = (query.get("answer") or "").strip()
    if status is not DeliveryStatus.FAILED:
        return DeliveryReport(external_id, status)
    where = "the SMSC rejected it" if code == 16 else "not delivered to the phone"
    error = f"{where}: {answer}" if answer else where
    return DeliveryReport(external_id, status, error, kannel_permanent(answer))


# Twilio error codes that mean the number cannot receive SMS from us (until it opts in again).
TWILIO_PERMANENT_CODES = frozenset({
    "21211",  # invalid 'To' phone number
    "21214",  # 'To' number cannot be reached
    "21217",  # phone number does not appear to be valid
    "21610",  # the recipient replied STOP to this sender
    "21612",  # the 'To' number is not reachable by this sender
    "21614",  # 'To' is not a mobile number
    "30003",  # unreachable destination handset
    "30005",  # unknown destination handset
    "30006",  # landline or unreachable carrier
})

_TWILIO_STATUS = {
    "sent": DeliveryStatus.SENT, "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ, "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED, "canceled": DeliveryStatus.FAILED,
}


def twilio_report(form: Mapping[str, str]) -> DeliveryReport | None:
    """A Twilio status callback, or None for the states before "sent" (queued, sending, …)."""
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if not sid:
        raise ValueError("the status callback has no MessageSid")
    status = _TWILIO_STATUS.get((form.get("MessageStatus") or form.get("SmsStatus") or "").lower())
    if status is None:
        return None
    if status is not DeliveryStatus.FAILED:
        return DeliveryReport(sid, status)
    code = (form.get("ErrorCode") or "").strip()
    message = (form.get("ErrorMessage") or "").strip()
    state = (form.get("MessageStatus") or "").lower()
    error = f"Twilio: {state}" + (f", error {code}" if code else "") + \
        (f": {message}" if message else "")
    return DeliveryReport(sid, status, error, code in TWILIO_PERMANENT_CODES)
