"""Telnyx messaging webhooks, signed with an Ed25519 key made here.

The payload is the documented ``message.finalized`` example of
https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks ("Delivery status
Payload"); the failure codes are those of
https://developers.telnyx.com/docs/messaging/messages/error-codes. The signature is
``base64(Ed25519("{timestamp}|{body}"))`` as telnyx-python's ``Webhook.verify`` checks it.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from providers.callbacks import CallbackRequest, DeliveryEventKind
from providers.telnyx import TelnyxProvider
from tests.providers.sms_callback_harness import parse, rejected

PRIVATE_KEY = Ed25519PrivateKey.generate()
PUBLIC_KEY = base64.b64encode(
    PRIVATE_KEY.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
).decode()
CREDENTIALS = {"api_key": "KEY-SECRET-telnyx", "public_key": PUBLIC_KEY}
SETTINGS = {"from_number": "+13125000000"}
URL = "https://hooks.example.com/callbacks/telnyx/int-1"

#: The documented message.finalized example (the recipient's number completed, the MMS-only
#: fields left out).
FINALIZED: dict[str, Any] = {
    "data": {
        "event_type": "message.finalized",
        "id": "4ee8c3a6-4995-4309-a3c6-38e3db9ea4be",
        "occurred_at": "2019-12-09T21:32:14.148+00:00",
        "payload": {
            "completed_at": "2019-12-09T21:32:14.148+00:00",
            "cost": None,
            "direction": "outbound",
            "encoding": "GSM-7",
            "errors": [],
            "from": {
                "carrier": "T-Mobile USA",
                "line_type": "Wireless",
                "phone_number": "+13125000000",
                "status": "webhook_delivered",
            },
            "id": "ac012cbf-5e09-46af-a69a-7c0e2d90993c",
            "media": [],
            "messaging_profile_id": "83d2343b-553f-4c5f-b8c8-fd27004f94bf",
            "organization_id": "9d76d591-1b7d-405d-8c64-1320ee070245",
            "parts": 1,
            "received_at": "2019-12-09T21:32:13.552+00:00",
            "record_type": "message",
            "sent_at": "2019-12-09T21:32:13.596+00:00",
            "tags": [],
            "text": "Hello there!",
            "to": [
                {
                    "carrier": "T-MOBILE USA, INC.",
                    "line_type": "Wireless",
                    "phone_number": "+13125000001",
                    "status": "delivered",
                }
            ],
            "type": "SMS",
            "valid_until": "2019-12-09T22:32:13.552+00:00",
            "webhook_failover_url": None,
            "webhook_url": "https://hooks.example.com/callbacks/telnyx/int-1",
        },
        "record_type": "event",
    },
    "meta": {"attempt": 1, "delivered_to": "https://hooks.example.com/callbacks/telnyx/int-1"},
}


def finalized(status: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(FINALIZED)
    event["data"]["payload"]["to"][0]["status"] = status
    event["data"]["payload"]["errors"] = errors or []
    return event


def webhook(
    event: dict[str, Any], *, timestamp: float | None = None, key: Ed25519PrivateKey = PRIVATE_KEY
) -> CallbackRequest:
    body = json.dumps(event).encode()
    stamp = str(int(time.time() if timestamp is None else timestamp))
    signature = base64.b64encode(key.sign(stamp.encode() + b"|" + body)).decode()
    return CallbackRequest(
        url=URL,
        headers={
            "Content-Type": "application/json",
            "Telnyx-Signature-Ed25519": signature,
            "Telnyx-Timestamp": stamp,
        },
        body=body,
    )


def test_delivered() -> None:
    (event,) = parse(TelnyxProvider, webhook(FINALIZED), CREDENTIALS, SETTINGS).events
    assert event.kind is DeliveryEventKind.DELIVERED
    assert event.event_id == "4ee8c3a6-4995-4309-a3c6-38e3db9ea4be"
    assert event.provider_message_id == "ac012cbf-5e09-46af-a69a-7c0e2d90993c"
    assert event.recipient == "+13125000001"
    assert event.occurred_at.isoformat() == "2019-12-09T21:32:14.148000+00:00"
    assert not event.suppress


@pytest.mark.parametrize(
    ("status", "code", "suppress"),
    [
        ("delivery_failed", 40001, True),
        ("delivery_failed", 40012, True),
        ("sending_failed", 40300, True),
        ("sending_failed", 40310, True),
        ("delivery_failed", 40002, False),
        ("delivery_failed", 40006, False),
        ("expired", 40005, False),
    ],
)
def test_failures(status: str, code: int, suppress: bool) -> None:
    errors = [{"code": str(code), "title": "refused", "detail": "carrier said no"}]
    (event,) = parse(
        TelnyxProvider, webhook(finalized(status, errors)), CREDENTIALS, SETTINGS
    ).events
    assert event.kind is DeliveryEventKind.UNDELIVERED
    assert event.suppress is suppress
    assert event.reason == f"{code}: refused"


def test_a_failure_without_errors_keeps_the_status_as_reason() -> None:
    request = webhook(finalized("delivery_failed"))
    (event,) = parse(TelnyxProvider, request, CREDENTIALS, SETTINGS).events
    assert event.reason == "delivery_failed"
    assert not event.suppress


def test_several_recipients_have_one_event_each() -> None:
    event = copy.deepcopy(FINALIZED)
    event["data"]["payload"]["to"].append({"phone_number": "+13125000002", "status": "delivered"})
    events = parse(TelnyxProvider, webhook(event), CREDENTIALS, SETTINGS).events
    assert [item.recipient for item in events] == ["+13125000001", "+13125000002"]
    assert len({item.event_id for item in events}) == 2


@pytest.mark.parametrize("status", ["queued", "sending", "sent", "delivery_unconfirmed"])
def test_statuses_without_a_normalized_name_are_dropped(status: str) -> None:
    assert parse(TelnyxProvider, webhook(finalized(status)), CREDENTIALS, SETTINGS).events == ()


@pytest.mark.parametrize("event_type", ["message.sent", "message.received"])
def test_other_event_types_are_dropped(event_type: str) -> None:
    event = copy.deepcopy(FINALIZED)
    event["data"]["event_type"] = event_type
    assert parse(TelnyxProvider, webhook(event), CREDENTIALS, SETTINGS).events == ()


def test_a_changed_byte_is_rejected() -> None:
    request = webhook(FINALIZED)
    tampered = request.model_copy(update={"body": request.body.replace(b"delivered", b"Delivered")})
    error = rejected(TelnyxProvider, tampered, CREDENTIALS, SETTINGS)
    assert "does not match" in error.reason


def test_a_changed_timestamp_is_rejected() -> None:
    request = webhook(FINALIZED)
    headers = {**request.headers, "telnyx-timestamp": str(int(time.time()) + 1)}
    rejected(TelnyxProvider, request.model_copy(update={"headers": headers}), CREDENTIALS, SETTINGS)


def test_another_key_is_rejected() -> None:
    request = webhook(FINALIZED, key=Ed25519PrivateKey.generate())
    rejected(TelnyxProvider, request, CREDENTIALS, SETTINGS)


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_outside_the_window_is_rejected(offset: int) -> None:
    request = webhook(FINALIZED, timestamp=time.time() + offset)
    error = rejected(TelnyxProvider, request, CREDENTIALS, SETTINGS)
    assert "300 seconds" in error.reason


@pytest.mark.parametrize("header", ["telnyx-signature-ed25519", "telnyx-timestamp"])
def test_a_missing_header_is_rejected(header: str) -> None:
    request = webhook(FINALIZED)
    headers = {name: value for name, value in request.headers.items() if name != header}
    error = rejected(
        TelnyxProvider, request.model_copy(update={"headers": headers}), CREDENTIALS, SETTINGS
    )
    assert header in error.reason


def test_without_a_public_key_every_webhook_is_rejected() -> None:
    credentials = {"api_key": "KEY-SECRET-telnyx"}
    error = rejected(TelnyxProvider, webhook(FINALIZED), credentials, SETTINGS)
    assert "no webhook secret configured" in error.reason
    assert "public_key" in error.reason


def test_a_public_key_that_is_not_ed25519_is_refused_when_saved() -> None:
    with pytest.raises(ValidationError, match="public_key"):
        TelnyxProvider.parse_credentials({"api_key": "k", "public_key": "bm90IGEga2V5"})


def test_a_signed_body_that_is_not_json_is_unreadable() -> None:
    stamp = str(int(time.time()))
    body = b"not json"
    signature = base64.b64encode(PRIVATE_KEY.sign(stamp.encode() + b"|" + body)).decode()
    request = CallbackRequest(
        url=URL,
        headers={"telnyx-signature-ed25519": signature, "telnyx-timestamp": stamp},
        body=body,
    )
    assert rejected(TelnyxProvider, request, CREDENTIALS, SETTINGS).unreadable
