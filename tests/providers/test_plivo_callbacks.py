"""Plivo message status callbacks, V3-signed as Plivo signs them.

The fields are those of https://www.plivo.com/docs/messaging/api/message/message-status-callbacks
("Attributes"), the error codes those of
https://www.plivo.com/docs/messaging/troubleshooting/error-codes. The known-answer signatures were
computed with plivo-python's own ``construct_post_url`` / ``construct_get_url`` and
``get_signature_v3`` (plivo/utils/signature_v3.py), so the quirks of its signed string (the ``?``
before the POST fields, the ``.`` after a query) are pinned.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import pytest

from providers.callbacks import CallbackRequest, DeliveryEventKind
from providers.plivo import PlivoProvider
from providers.plivo_callbacks import compute_signature
from tests.providers.sms_callback_harness import parse, rejected

AUTH_TOKEN = "SECRET-plivo-token"
CREDENTIALS = {"auth_id": "MAXXXXXXXXXXXXXXXXXX", "auth_token": AUTH_TOKEN}
SETTINGS = {"src": "+14155550100"}
URL = "https://hooks.example.com/cb/plivo"
MESSAGE_UUID = "db3ce55a-7f1d-11e1-8ea7-1231380bc196"


def documented(status: str = "delivered", error_code: str = "000") -> dict[str, str]:
    """A status callback with the documented attributes."""
    return {
        "MessageUUID": MESSAGE_UUID,
        "To": "14155550111",
        "From": "14155550100",
        "Type": "sms",
        "Status": status,
        "Units": "1",
        "TotalRate": "0.0050",
        "TotalAmount": "0.0050",
        "MCC": "310",
        "MNC": "260",
        "ErrorCode": error_code,
        "ParentMessageUUID": MESSAGE_UUID,
        "PartInfo": "1 of 1",
        "Sequence": "3",
        "MessageTime": "2024-05-03 10:21:55.960749+00:00",
        "QueuedTime": "2024-05-03 10:21:55.970749+00:00",
        "SentTime": "2024-05-03 10:21:56.160749+00:00",
        "DeliveryReportTime": "2024-05-03 10:21:58.960749+00:00",
        "PowerpackUUID": "",
    }


def post(form: dict[str, str], *, url: str = URL, token: str = AUTH_TOKEN) -> CallbackRequest:
    nonce = secrets.token_hex(10)
    fields = {name: [value] for name, value in form.items()}
    return CallbackRequest(
        url=url,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Plivo-Signature-V3": compute_signature(token, "POST", url, fields, nonce),
            "X-Plivo-Signature-V3-Nonce": nonce,
        },
        body=urlencode(form).encode(),
    )


KNOWN_FORM = {
    "From": ["14155550100"],
    "To": ["14155550111"],
    "Status": ["delivered"],
    "MessageUUID": [MESSAGE_UUID],
    "ErrorCode": ["000"],
}


@pytest.mark.parametrize(
    ("method", "url", "fields", "expected"),
    [
        ("POST", f"{URL}?b=2&a=1", KNOWN_FORM, "+iejLFRHuJgQaRLhDrp20AcE4uuWI75GIuCJveR++RQ="),
        ("POST", URL, KNOWN_FORM, "wU+/RjL61vXvTdIAz1A6Mio7R8Lr5vicedik31+a/7s="),
        (
            "GET",
            f"{URL}?Status=delivered&MessageUUID=db3ce55a&To=14155550111",
            {},
            "EnOCFri9MnLWOZF8SjmMjlVuDKEadGqEblLKK/WoTmU=",
        ),
        ("POST", f"{URL}?x=1", {}, "mRGs6lk3vdWRNpR/ezck0GmUS0JtJmXY8g/7YO1+9t4="),
    ],
)
def test_plivo_python_known_answers(
    method: str, url: str, fields: dict[str, list[str]], expected: str
) -> None:
    assert compute_signature(AUTH_TOKEN, method, url, fields, "05429567804466091622") == expected


def test_delivered() -> None:
    (event,) = parse(PlivoProvider, post(documented()), CREDENTIALS, SETTINGS).events
    assert event.kind is DeliveryEventKind.DELIVERED
    assert event.provider_message_id == MESSAGE_UUID
    assert event.recipient == "+14155550111"
    assert event.occurred_at.isoformat() == "2024-05-03T10:21:58.960749+00:00"
    assert not event.suppress
    assert event.reason is None


def test_a_get_callback() -> None:
    nonce = "05429567804466091622"
    url = f"{URL}?{urlencode(documented())}"
    signature = compute_signature(AUTH_TOKEN, "GET", url, {}, nonce)
    request = CallbackRequest(
        method="GET",
        url=url,
        headers={"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce},
    )
    (event,) = parse(PlivoProvider, request, CREDENTIALS, SETTINGS).events
    assert event.kind is DeliveryEventKind.DELIVERED


def test_one_of_several_signatures_is_enough() -> None:
    request = post(documented())
    header = f"bm90IGl0, {request.headers['x-plivo-signature-v3']}"
    headers = {**request.headers, "x-plivo-signature-v3": header}
    assert parse(
        PlivoProvider, request.model_copy(update={"headers": headers}), CREDENTIALS, SETTINGS
    ).events


@pytest.mark.parametrize(
    ("status", "code", "suppress"),
    [
        ("undelivered", "50", True),
        ("undelivered", "70", True),
        ("failed", "200", True),
        ("undelivered", "80", False),
        ("failed", "30", False),
        ("rejected", "100", False),
        ("undelivered", "1000", False),
    ],
)
def test_failures(status: str, code: str, suppress: bool) -> None:
    (event,) = parse(PlivoProvider, post(documented(status, code)), CREDENTIALS, SETTINGS).events
    assert event.kind is DeliveryEventKind.UNDELIVERED
    assert event.suppress is suppress
    assert event.reason is not None
    assert event.reason.startswith(f"{status} ({code}: ")


def test_read_is_opened_and_ids_are_stable() -> None:
    read = parse(PlivoProvider, post(documented("read")), CREDENTIALS, SETTINGS).events[0]
    again = parse(PlivoProvider, post(documented("read")), CREDENTIALS, SETTINGS).events[0]
    delivered = parse(PlivoProvider, post(documented()), CREDENTIALS, SETTINGS).events[0]
    assert read.kind is DeliveryEventKind.OPENED
    assert read.event_id == again.event_id != delivered.event_id


@pytest.mark.parametrize("status", ["queued", "sent"])
def test_statuses_without_a_normalized_name_are_dropped(status: str) -> None:
    assert parse(PlivoProvider, post(documented(status)), CREDENTIALS, SETTINGS).events == ()


def test_a_changed_byte_is_rejected() -> None:
    request = post(documented())
    tampered = request.model_copy(update={"body": request.body.replace(b"delivered", b"Delivered")})
    error = rejected(PlivoProvider, tampered, CREDENTIALS, SETTINGS, secrets=[AUTH_TOKEN])
    assert "X-Plivo-Signature-V3 does not match" in error.reason


def test_another_nonce_is_rejected() -> None:
    request = post(documented())
    headers = {**request.headers, "x-plivo-signature-v3-nonce": "1234"}
    rejected(PlivoProvider, request.model_copy(update={"headers": headers}), CREDENTIALS, SETTINGS)


def test_another_url_is_rejected() -> None:
    request = post(documented())
    moved = request.model_copy(update={"url": "https://hooks.example.com/cb/other"})
    rejected(PlivoProvider, moved, CREDENTIALS, SETTINGS)


def test_another_token_is_rejected() -> None:
    rejected(PlivoProvider, post(documented(), token="another-token"), CREDENTIALS, SETTINGS)


@pytest.mark.parametrize("header", ["x-plivo-signature-v3", "x-plivo-signature-v3-nonce"])
def test_a_missing_header_is_rejected(header: str) -> None:
    request = post(documented())
    headers = {name: value for name, value in request.headers.items() if name != header}
    error = rejected(
        PlivoProvider, request.model_copy(update={"headers": headers}), CREDENTIALS, SETTINGS
    )
    assert "missing" in error.reason
