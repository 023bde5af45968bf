"""Mailgun's event webhooks, with the documented sample payloads.

Samples: https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-payloads
(the delivered, failed, opened, clicked and complained events). Signing:
https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks (hex
HMAC-SHA256 of timestamp + token with the webhook signing key).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from providers.callbacks import BounceKind, CallbackRequest, DeliveryEventKind
from providers.mailgun import MailgunProvider
from providers.mailgun_callbacks import message_id
from tests.providers.callback_harness import parse, rejected, request

PROVIDER = MailgunProvider()
SETTINGS = {"from_email": "bob@sample.mailgun.com", "domain": "sample.mailgun.com"}
SIGNING_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
CREDENTIALS = {"api_key": "SECRET-mailgun-api-key", "webhook_signing_key": SIGNING_KEY}
TOKEN = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"
#: What the send stored: the API's ``id``.
STORED_ID = "<20260203192638.000be97f99f8cea1@sample.mailgun.com>"


def _event_data(event: str, event_id: str, **extra: Any) -> dict[str, Any]:
    """The documented ``event-data`` shape (account, domain, envelope, message headers)."""
    return {
        "account": {"id": "1234567890303a4bd1f33898"},
        "domain": {"name": "sample.mailgun.com"},
        "envelope": {
            "sender": "sender@sample.mailgun.com",
            "targets": "recipient@sample.mailgun.com",
            "transport": "smtp",
        },
        "event": event,
        "flags": {"is-authenticated": True, "is-test-mode": False},
        "id": event_id,
        "log-level": "info",
        "message": {
            "headers": {
                "from": "Sample Sender <sender@sample.mailgun.com>",
                "message-id": "20260203192638.000be97f99f8cea1@sample.mailgun.com",
                "subject": "Sample webhook payload",
                "to": "recipient@sample.mailgun.com",
            },
            "size": 341,
        },
        "recipient": "recipient@sample.mailgun.com",
        "recipient-domain": "sample.mailgun.com",
        "timestamp": 1770146798.611826,
        "user-variables": {"delivery_id": "d-1"},
        **extra,
    }


DELIVERED = _event_data(
    "delivered",
    "Ase7i2zsRYeDXztHGENqRA",
    **{
        "delivery-status": {
            "attempt-no": 1,
            "code": 250,
            "description": "",
            "message": "OK",
            "mx-host": "smtp-in.sample.mailgun.com",
            "tls": True,
        }
    },
)
FAILED_PERMANENT = _event_data(
    "failed",
    "G9Bn5sl1TC6nu79C8C0bwg",
    severity="permanent",
    reason="bounce",
    **{
        "delivery-status": {
            "attempt-no": 1,
            "code": 550,
            "description": "",
            "message": "5.1.1 The email account that you tried to reach does not exist.",
            "mx-host": "smtp-in.sample.mailgun.com",
        }
    },
)
FAILED_TEMPORARY = _event_data(
    "failed",
    "Fs7-5t81S2ms-j_fB5ohMg",
    severity="temporary",
    reason="generic",
    **{"delivery-status": {"attempt-no": 1, "code": 452, "message": "4.2.2 Mailbox full"}},
)
OPENED = _event_data("opened", "Ps7-5t81S2ms-j_fB5ohMg", ip="50.56.129.169")
CLICKED = _event_data("clicked", "Ns7-5t81S2ms-j_fB5ohMg", url="https://mailgun.com")
COMPLAINED = _event_data("complained", "ncV2XwymRUKbPek_MIM-Gw")
ACCEPTED = _event_data("accepted", "CCXMjJ7nQi2N3BPigGOdgQ", method="HTTP")


def signed(
    event_data: dict[str, Any], timestamp: int | None = None, key: str = SIGNING_KEY
) -> CallbackRequest:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(key.encode(), (stamp + TOKEN).encode(), hashlib.sha256).hexdigest()
    body = {
        "signature": {"token": TOKEN, "timestamp": stamp, "signature": signature},
        "event-data": event_data,
    }
    return request(json.dumps(body).encode(), {"Content-Type": "application/json"})


def only_event(event_data: dict[str, Any]) -> Any:
    (event,) = parse(PROVIDER, signed(event_data), CREDENTIALS, SETTINGS).events
    return event


def test_delivered() -> None:
    event = only_event(DELIVERED)
    assert event.kind is DeliveryEventKind.DELIVERED
    assert event.provider_message_id == STORED_ID
    assert event.event_id == "Ase7i2zsRYeDXztHGENqRA"
    assert event.recipient == "recipient@sample.mailgun.com"
    assert event.occurred_at == datetime.fromtimestamp(1770146798.611826, UTC)
    assert event.reason == "OK"
    assert not event.suppress


def test_a_permanent_failure_is_a_hard_bounce_that_suppresses() -> None:
    event = only_event(FAILED_PERMANENT)
    assert (event.kind, event.bounce, event.suppress) == (
        DeliveryEventKind.BOUNCED,
        BounceKind.HARD,
        True,
    )
    assert event.reason == (
        "550 bounce 5.1.1 The email account that you tried to reach does not exist."
    )


def test_a_temporary_failure_is_a_soft_bounce() -> None:
    event = only_event(FAILED_TEMPORARY)
    assert (event.kind, event.bounce, event.suppress) == (
        DeliveryEventKind.BOUNCED,
        BounceKind.SOFT,
        False,
    )


def test_opened_clicked_and_complained() -> None:
    assert only_event(OPENED).kind is DeliveryEventKind.OPENED
    clicked = only_event(CLICKED)
    assert (clicked.kind, clicked.url) == (DeliveryEventKind.CLICKED, "https://mailgun.com")
    complained = only_event(COMPLAINED)
    assert (complained.kind, complained.suppress) == (DeliveryEventKind.COMPLAINED, True)


def test_the_stored_id_keeps_its_angle_brackets() -> None:
    assert message_id("abc@example.com") == "<abc@example.com>"
    assert message_id("<abc@example.com>") == "<abc@example.com>"


def test_unknown_event_types_are_dropped() -> None:
    assert parse(PROVIDER, signed(ACCEPTED), CREDENTIALS, SETTINGS).events == ()


def test_a_changed_byte_of_the_signed_part_is_rejected() -> None:
    callback = signed(DELIVERED)
    tampered = callback.body.replace(TOKEN.encode(), TOKEN[:-1].encode() + b"4")
    reason = rejected(PROVIDER, request(tampered), CREDENTIALS, SETTINGS).reason
    assert reason == "wrong signature"


def test_another_signing_key_is_rejected() -> None:
    callback = signed(DELIVERED, key="key-someone-else")
    assert rejected(PROVIDER, callback, CREDENTIALS, SETTINGS).reason == "wrong signature"


def test_an_old_timestamp_is_rejected() -> None:
    callback = signed(DELIVERED, int(time.time()) - 301 - 60)
    assert "timestamp" in rejected(PROVIDER, callback, CREDENTIALS, SETTINGS).reason


@pytest.mark.parametrize("missing", ["signature", "token", "timestamp"])
def test_a_missing_signature_field_is_rejected(missing: str) -> None:
    body = json.loads(signed(DELIVERED).body)
    del body["signature"][missing]
    callback = request(json.dumps(body).encode())
    assert rejected(PROVIDER, callback, CREDENTIALS, SETTINGS).reason == (
        "incomplete signature object"
    )


def test_without_a_signing_key_every_callback_is_rejected() -> None:
    credentials = {"api_key": "SECRET-mailgun-api-key"}
    reason = rejected(PROVIDER, signed(DELIVERED), credentials, SETTINGS).reason
    assert reason == "no webhook secret configured"


def test_an_event_without_a_message_id_is_dropped() -> None:
    data = copy.deepcopy(DELIVERED)
    del data["message"]["headers"]["message-id"]
    assert parse(PROVIDER, signed(data), CREDENTIALS, SETTINGS).events == ()
