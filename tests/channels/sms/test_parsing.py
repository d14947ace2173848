"""Gateway webhooks as values: inbound SMS, delivery reports, Twilio's signature, limits (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict

from channels.sms.inbound import kannel_message, kannel_post_fields, twilio_message
from channels.sms.limits import check_sendable
from channels.sms.media import sms_parts
from channels.sms.reports import kannel_report, twilio_report
from channels.sms.signature import twilio_signature, valid_twilio_signature
from crm.config import SmsSettings
from crm.errors import InvalidAddress, SendRejected
from crm.types import Attachment, Channel, DeliveryStatus

# A Kannel get-url call as smsbox makes it (from=%p&to=%P&text=%a&id=%I&time=%t).
KANNEL_GET = {"token": "t", "from": "+12025550123", "to": "+15550100",
              "text": "Hello there é", "id": "9c1ef18a-9597-472a-a86c-64d4705cf1d1",
              "time": "2026-11-23 14:03:24"}


def test_kannel_inbound() -> None:
    msg = kannel_message(KANNEL_GET, "US")
    assert msg.channel is Channel.SMS
    assert msg.external_id == "kannel-i-9c1ef18a-9597-472a-a86c-64d4705cf1d1"
    assert msg.sender == "+12025550123" and msg.text == "Hello there é"
    assert msg.sent_at == datetime(2026, 11, 23, 14, 3, 24, tzinfo=UTC)


def test_numbers_without_country_code_use_the_default_region() -> None:
    assert kannel_message({**KANNEL_GET, "from": "8 916 123-45-67"}, "RU").sender == \
        "+79161234567"
    assert kannel_message({**KANNEL_GET, "from": "(202) 555-0123"}, "US").sender == \
        "+12025550123"


def test_without_a_kannel_id_the_id_is_a_stable_hash_of_sender_time_and_text() -> None:
    base = {k: v for k, v in KANNEL_GET.items() if k != "id"}
    one, again = kannel_message(base, "US"), kannel_message(dict(base), "US")
    other = kannel_message({**base, "text": "Hello there"}, "US")
    assert one.external_id == again.external_id != other.external_id
    assert one.external_id.startswith("kannel-h-")


# Recorded get-url calls that were answered 400 and lost: a number libphonenumber's metadata
# calls invalid (a range newer than its tables), a short code, an alphanumeric sender id.
KANNEL_GET_NEW_RANGE = {"token": "t", "from": "+15557654321", "to": "+15550100",
                        "text": "Is my parcel on its way?",
                        "id": "0b1f7a52-6c39-4f0e-9d51-2a8f3c1e9b77", "time": "2026-11-30 08:12:40"}
KANNEL_GET_SHORT_CODE = {"token": "t", "from": "72345", "to": "+15550100",
                         "text": "Your code is 481516", "id": "5d2c0e1b-1a7f-4c1e-8f0a-77c2b9e4d0aa",
                         "time": "2026-11-30 08:13:02"}
KANNEL_GET_ALPHANUMERIC = {"token": "t", "from": "ACME-Bank", "to": "+15550100",
                           "text": "Payment received, thank you",
                           "id": "e7a4c9d3-5b8e-4d2a-b1f6-0c3e9a8d7f21",
                           "time": "2026-11-30 08:14:55"}


@pytest.mark.parametrize(("query", "sender"), [
    (KANNEL_GET_NEW_RANGE, "+15557654321"),
    ({**KANNEL_GET_NEW_RANGE, "from": "15557654321"}, "+15557654321"),
    (KANNEL_GET_SHORT_CODE, "72345"),
    (KANNEL_GET_ALPHANUMERIC, "ACME-Bank"),
    ({**KANNEL_GET_ALPHANUMERIC, "from": "  ACME-Bank "}, "ACME-Bank"),
])
def test_kannel_inbound_keeps_every_sender(query: dict[str, str], sender: str) -> None:
    msg = kannel_message(query, "US")
    assert (msg.sender, msg.text) == (sender, query["text"])
    assert msg.external_id == f"kannel-i-{query['id']}"


def test_kannel_post_url_keeps_an_alphanumeric_sender() -> None:
    headers = CIMultiDict({**KANNEL_POST_HEADERS, "X-Kannel-From": "ACME-Bank"})
    msg = kannel_message(kannel_post_fields({"id": "1"}, headers, b"hi", "UTF-8"), "US")
    assert msg.sender == "ACME-Bank"


@pytest.mark.parametrize("sender", ["", "   "])
def test_kannel_inbound_without_a_sender_is_refused(sender: str) -> None:
    with pytest.raises((ValueError, InvalidAddress), match="no sender"):
        kannel_message({**KANNEL_GET, "from": sender}, "US")


# A Kannel post-url call with send-sender = true (smsbox.c, TRANSTYPE_POST_URL): the text is the
# body, the rest in X-Kannel-* headers; our URL adds the token and id=%I.
KANNEL_POST_HEADERS = CIMultiDict({
    "Content-Type": 'text/plain; charset="UTF-8"', "X-Kannel-From": "+12025550123",
    "X-Kannel-To": "+15550100", "X-Kannel-Time": "2026-11-23 14:03:24", "X-Kannel-Coding": "0"})


def test_kannel_post_url_reads_the_body_and_the_headers() -> None:
    fields = kannel_post_fields({"token": "t", "id": "9c1e"},
                                CIMultiDict({k.lower(): v for k, v in
                                             KANNEL_POST_HEADERS.items()}),
                                "Hello there é".encode(), "UTF-8")
    msg = kannel_message(fields, "US")
    assert (msg.external_id, msg.sender, msg.text) == ("kannel-i-9c1e", "+12025550123",
                                                       "Hello there é")
    assert msg.headers == {"to": "+15550100"}
    assert msg.sent_at == datetime(2026, 11, 23, 14, 3, 24, tzinfo=UTC)
    # What the URL says wins over the headers; text=%a in a post-url too.
    fields = kannel_post_fields({"from": "+12025550999", "text": "in the URL"},
                                KANNEL_POST_HEADERS, b"in the body", "UTF-8")
    assert (fields["from"], fields["text"]) == ("+12025550999", "in the URL")


@pytest.mark.parametrize(("body", "charset", "coding"), [
    ("Где посылка?".encode("utf-16-be"), "UTF-16BE", "2"),  # Kannel 1.4.5, mo-recode off
    ("Где посылка?".encode("utf-16-be"), None, "2"),  # older Kannel: application/octet-stream
    ("Где посылка?".encode(), "no-such-charset", "0"),
])
def test_kannel_post_url_text_in_any_charset_kannel_labels(body: bytes, charset: str | None,
                                                           coding: str) -> None:
    headers = CIMultiDict({**KANNEL_POST_HEADERS, "X-Kannel-Coding": coding})
    assert kannel_post_fields({}, headers, body, charset)["text"] == "Где посылка?"


def test_kannel_post_url_without_an_id_keeps_two_equal_texts_sent_at_different_times() -> None:
    def posted(when: str) -> str:
        headers = CIMultiDict({**KANNEL_POST_HEADERS, "X-Kannel-Time": when})
        return kannel_message(kannel_post_fields({}, headers, b"yes", "UTF-8"), "US").external_id

    assert posted("2026-11-23 14:03:24") == posted("2026-11-23 14:03:24")
    assert posted("2026-11-23 14:03:24") != posted("2026-11-23 14:09:00")


def test_kannel_post_url_without_a_sender_is_refused() -> None:
    headers = CIMultiDict({k: v for k, v in KANNEL_POST_HEADERS.items() if k != "X-Kannel-From"})
    with pytest.raises(ValueError, match="send-sender"):
        kannel_message(kannel_post_fields({"id": "1"}, headers, b"hi", "UTF-8"), "US")


def test_twilio_inbound_with_media() -> None:
    form = {"MessageSid": "SM123", "From": "+12025550123", "To": "+15550100", "Body": "pic",
            "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/media/ME1",
            "MediaContentType0": "image/jpeg"}
    msg = twilio_message(form, "US")
    assert (msg.external_id, msg.sender, msg.text) == ("SM123", "+12025550123", "pic")
    assert msg.attachments[0].file_id == "https://api.twilio.com/media/ME1"
    assert msg.attachments[0].mime_type == "image/jpeg"


# A Twilio inbound webhook as Twilio posts it, from an alphanumeric sender id (delivered as From
# where the network allows them) and from a number newer than libphonenumber's tables.
TWILIO_ALPHANUMERIC = {"ToCountry": "GB", "ToState": "", "SmsMessageSid": "SM9f2c1d",
                       "NumMedia": "0", "ToCity": "", "FromZip": "", "SmsSid": "SM9f2c1d",
                       "FromState": "", "SmsStatus": "received", "FromCity": "",
                       "Body": "Your delivery is booked", "FromCountry": "GB",
                       "To": "+447700900123", "ToZip": "", "NumSegments": "1",
                       "MessageSid": "SM9f2c1d", "AccountSid": "AC0123", "From": "ACME",
                       "ApiVersion": "2010-04-01"}


@pytest.mark.parametrize(("sender", "stored"), [("ACME", "ACME"),
                                                ("+15557654321", "+15557654321")])
def test_twilio_inbound_keeps_every_sender(sender: str, stored: str) -> None:
    msg = twilio_message({**TWILIO_ALPHANUMERIC, "From": sender}, "GB")
    assert (msg.sender, msg.external_id) == (stored, "SM9f2c1d")


def test_twilio_inbound_without_a_sender_is_refused() -> None:
    with pytest.raises((ValueError, InvalidAddress), match="no From"):
        twilio_message({**TWILIO_ALPHANUMERIC, "From": " "}, "GB")


@pytest.mark.parametrize(("query", "status", "permanent"), [
    ({"status": "1"}, DeliveryStatus.DELIVERED, False),
    ({"status": "8", "answer": "ACK/"}, DeliveryStatus.SENT, False),
    ({"status": "2", "answer": "NACK/0x0000000b/Invalid Destination Address"},
     DeliveryStatus.FAILED, True),
    ({"status": "16", "answer": "NACK/0x00000058/Throttling error"},
     DeliveryStatus.FAILED, False),
    ({"status": "2", "answer": "Absent subscriber"}, DeliveryStatus.FAILED, False),
])
def test_kannel_delivery_reports(query: dict[str, str], status: DeliveryStatus,
                                 permanent: bool) -> None:
    report = kannel_report({"id": "kannel-1-abc", **query})
    assert report is not None
    assert (report.external_id, report.status, report.permanent) == \
        ("kannel-1-abc", status, permanent)
    if status is DeliveryStatus.FAILED:
        assert report.error and query["answer"] in report.error


def test_kannel_queued_on_smsc_changes_nothing() -> None:
    assert kannel_report({"id": "x", "status": "4"}) is None


def test_kannel_report_without_status_is_an_error() -> None:
    with pytest.raises(ValueError, match="status"):
        kannel_report({"id": "x", "status": "%d"})


def test_twilio_status_callbacks() -> None:
    assert twilio_report({"MessageSid": "SM1", "MessageStatus": "sending"}) is None
    report = twilio_report({"MessageSid": "SM1", "MessageStatus": "delivered"})
    assert report is not None and report.status is DeliveryStatus.DELIVERED
    report = twilio_report({"MessageSid": "SM1", "MessageStatus": "undelivered",
                            "ErrorCode": "30005"})
    assert report is not None and report.status is DeliveryStatus.FAILED and report.permanent
    assert report.error is not None and "30005" in report.error
    report = twilio_report({"MessageSid": "SM1", "MessageStatus": "failed",
                            "ErrorCode": "30008"})
    assert report is not None and not report.permanent


def test_twilio_signature_matches_twilios_published_example() -> None:
    # The example of Twilio's helper libraries' test suites (auth token 12345).
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}
    assert twilio_signature(url, params.items(), "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert valid_twilio_signature(url, params.items(), "12345", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    # Twilio may have signed the URL with the default port spelled out.
    assert valid_twilio_signature(url.replace(".com/", ".com:443/"), params.items(), "12345",
                                  "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not valid_twilio_signature(url, {**params, "Digits": "1235"}.items(), "12345",
                                      "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not valid_twilio_signature(url, params.items(), "12345", None)


def test_check_sendable_names_the_limit_and_what_to_do() -> None:
    assert check_sendable("a" * 306, 2).segments == 2
    with pytest.raises(SendRejected, match=r"3 segments and the limit is 2.*306 characters.*1 character\."):
        check_sendable("a" * 307, 2)
    with pytest.raises(SendRejected, match=r"\(Ж\).*UCS-2 with at most 70 characters in 1 segment\."):
        check_sendable("Ж" * 71, 1)
    # An MMS may go without text; a file by SMS needs a signed link (channels/sms/media.py).
    assert check_sendable("", 6, media=["https://crm.example.com/f/t"]).segments == 1
    sms = SmsSettings(provider="kannel")
    with pytest.raises(SendRejected, match="download link"):
        sms_parts(sms, "+12025550143", "see attached", [Attachment("document", path="/x")])
    linked = Attachment("document", path="/x", meta={"url": "https://crm.example.com/f/t"})
    assert sms_parts(sms, "+12025550143", "see", [linked]) == (
        "see https://crm.example.com/f/t", [])
    twilio = SmsSettings(provider="twilio")
    big = Attachment("photo", path="/x", size=6 * 1024 * 1024, meta=linked.meta)
    assert sms_parts(twilio, "+12025550143", "see", [Attachment(
        "photo", path="/x", size=1000, meta=linked.meta)]) == (
        "see", ["https://crm.example.com/f/t"])
    assert sms_parts(twilio, "+12025550143", "see", [big])[1] == []  # over 5 MB: a link
    # 5 MB is the limit of the whole MMS: two files of 3 MB go as links.
    three = Attachment("photo", path="/x", size=3 * 1024 * 1024, meta=linked.meta)
    assert sms_parts(twilio, "+12025550143", "see", [three, three]) == (
        "see https://crm.example.com/f/t https://crm.example.com/f/t", [])
    assert sms_parts(twilio, "+4915112345678", "see", [linked])[1] == []  # no MMS there
    with pytest.raises(SendRejected, match="text"):
        check_sendable("  ", 6)
