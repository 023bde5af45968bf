"""Postmark's webhooks, with the documented sample payloads.

Samples: https://postmarkapp.com/developer/webhooks/delivery-webhook,
https://postmarkapp.com/developer/webhooks/bounce-webhook,
https://postmarkapp.com/developer/webhooks/spam-complaint-webhook,
https://postmarkapp.com/developer/webhooks/open-tracking-webhook and
https://postmarkapp.com/developer/webhooks/click-webhook. Authentication: HTTP basic auth in the
webhook URL (https://postmarkapp.com/developer/webhooks/webhooks-overview).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from providers.callbacks import BounceKind, CallbackRequest, DeliveryEventKind
from providers.postmark import PostmarkProvider
from tests.providers.callback_harness import parse, rejected, request

PROVIDER = PostmarkProvider()
SETTINGS = {"from_email": "sender@example.com"}
CREDENTIALS = {
    "server_token": "SECRET-postmark-server-token",
    "webhook_username": "postmark",
    "webhook_password": "SECRET-webhook-password",
}
METADATA = {"a_key": "a_value", "b_key": "b_value"}

DELIVERY = {
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Recipient": "john@example.com",
    "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
    "Details": "Test delivery webhook details",
    "Tag": "welcome-email",
    "ServerID": 23,
    "Metadata": METADATA,
    "RecordType": "Delivery",
    "MessageStream": "outbound",
}
BOUNCE = {
    "RecordType": "Bounce",
    "MessageStream": "outbound",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "Tag": "Test",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Metadata": METADATA,
    "ServerID": 23,
    "Description": "The server was unable to deliver your message (ex: unknown user, mailbox "
    "not found).",
    "Details": "Test bounce details",
    "Email": "john@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2019-11-05T16:33:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "Test subject",
    "Content": "Test content",
}
SPAM_COMPLAINT = {
    **BOUNCE,
    "RecordType": "SpamComplaint",
    "ID": 42,
    "Type": "SpamComplaint",
    "TypeCode": 512,
    "Name": "Spam complaint",
    "Description": "The subscriber explicitly marked this message as spam.",
    "Details": "Test spam complaint details",
}
OPEN = {
    "RecordType": "Open",
    "MessageStream": "outbound",
    "FirstOpen": True,
    "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"},
    "OS": {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc.", "Family": "OS X 10"},
    "Platform": "WebMail",
    "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5)",
    "ReadSeconds": 5,
    "Geo": {"CountryISOCode": "RS", "Country": "Serbia", "City": "Novi Sad"},
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Metadata": METADATA,
    "ReceivedAt": "2019-11-05T16:33:54.9070259Z",
    "Tag": "welcome-email",
    "Recipient": "john@example.com",
}
CLICK = {
    "RecordType": "Click",
    "MessageStream": "outbound",
    "ClickLocation": "HTML",
    "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"},
    "Platform": "Desktop",
    "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5)",
    "OriginalLink": "https://example.com",
    "MessageID": "00000000-0000-0000-0000-000000000000",
    "Metadata": METADATA,
    "ReceivedAt": "2017-10-25T15:21:11.0000000Z",
    "Tag": "welcome-email",
    "Recipient": "john@example.com",
}
SUBSCRIPTION_CHANGE = {
    "RecordType": "SubscriptionChange",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "ServerID": 23,
    "MessageStream": "outbound",
    "ChangedAt": "2020-02-01T10:53:34.416071Z",
    "Recipient": "bounced-address@wildbit.com",
    "Origin": "Recipient",
    "SuppressSending": True,
    "SuppressionReason": "HardBounce",
}


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def posted(record: dict[str, Any], authorization: str | None = None) -> CallbackRequest:
    headers = {"Content-Type": "application/json"}
    headers["Authorization"] = authorization or basic("postmark", "SECRET-webhook-password")
    return request(json.dumps(record).encode(), headers)


def only_event(record: dict[str, Any]) -> Any:
    (event,) = parse(PROVIDER, posted(record), CREDENTIALS, SETTINGS).events
    return event


def test_delivery() -> None:
    event = only_event(DELIVERY)
    assert event.kind is DeliveryEventKind.DELIVERED
    assert event.provider_message_id == "883953f4-6105-42a2-a16a-77a8eac79483"
    assert event.recipient == "john@example.com"
    assert event.occurred_at == datetime(2019, 11, 5, 16, 33, 54, 907025, tzinfo=UTC)
    assert event.event_id.startswith("sha256:")
    assert event.reason == "Test delivery webhook details"


def test_a_hard_bounce_suppresses() -> None:
    event = only_event(BOUNCE)
    assert (event.kind, event.bounce, event.suppress) == (
        DeliveryEventKind.BOUNCED,
        BounceKind.HARD,
        True,
    )
    assert event.event_id == "postmark-bounce:4323372036854775807"
    assert event.recipient == "john@example.com"
    assert event.reason is not None and event.reason.startswith("HardBounce: The server was")


@pytest.mark.parametrize(
    ("bounce_type", "inactive", "kind"),
    [
        ("SoftBounce", False, BounceKind.SOFT),
        ("Transient", False, BounceKind.SOFT),
        ("DnsError", False, BounceKind.SOFT),
        ("SoftBounce", True, BounceKind.HARD),
        ("BadEmailAddress", False, BounceKind.HARD),
    ],
)
def test_bounce_types(bounce_type: str, inactive: bool, kind: BounceKind) -> None:
    event = only_event({**BOUNCE, "Type": bounce_type, "Inactive": inactive})
    assert (event.bounce, event.suppress) == (kind, kind is BounceKind.HARD)


def test_an_auto_responder_is_no_bounce() -> None:
    callback = posted({**BOUNCE, "Type": "AutoResponder", "Inactive": False})
    assert parse(PROVIDER, callback, CREDENTIALS, SETTINGS).events == ()


def test_spam_complaint_open_and_click() -> None:
    complaint = only_event(SPAM_COMPLAINT)
    assert (complaint.kind, complaint.suppress) == (DeliveryEventKind.COMPLAINED, True)
    assert only_event(OPEN).kind is DeliveryEventKind.OPENED
    click = only_event(CLICK)
    assert (click.kind, click.url) == (DeliveryEventKind.CLICKED, "https://example.com")


def test_unknown_record_types_are_dropped() -> None:
    callback = posted(SUBSCRIPTION_CHANGE)
    assert parse(PROVIDER, callback, CREDENTIALS, SETTINGS).events == ()


@pytest.mark.parametrize(
    "authorization",
    [
        basic("postmark", "SECRET-webhook-passworx"),
        basic("someone", "SECRET-webhook-password"),
        "Bearer SECRET-webhook-password",
        "Basic !!!",
    ],
)
def test_wrong_credentials_are_rejected(authorization: str) -> None:
    rejected(PROVIDER, posted(DELIVERY, authorization), CREDENTIALS, SETTINGS)


def test_a_missing_authorization_header_is_rejected() -> None:
    callback = request(json.dumps(DELIVERY).encode())
    reason = rejected(PROVIDER, callback, CREDENTIALS, SETTINGS).reason
    assert reason == "missing authorization header"


def test_without_a_webhook_password_every_callback_is_rejected() -> None:
    credentials = {"server_token": "SECRET-postmark-server-token"}
    reason = rejected(PROVIDER, posted(DELIVERY), credentials, SETTINGS).reason
    assert reason == "no webhook secret configured"


def test_a_body_that_is_not_json_is_unreadable() -> None:
    callback = posted(DELIVERY).model_copy(update={"body": b"{"})
    assert rejected(PROVIDER, callback, CREDENTIALS, SETTINGS).unreadable
