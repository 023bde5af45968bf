"""Resend's Svix-signed webhooks, with the documented sample events.

Samples: https://resend.com/docs/dashboard/webhooks/event-types (email.delivered,
email.bounced, email.clicked...). Signing: https://docs.svix.com/receiving/verifying-payloads/how-manual
(HMAC-SHA256 of ``{svix-id}.{svix-timestamp}.{body}`` keyed with the base64 part of ``whsec_``),
including Svix's own worked example as a known answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from providers.callbacks import BounceKind, CallbackRequest, DeliveryEventKind
from providers.resend import ResendProvider
from tests.providers.callback_harness import parse, rejected, request

PROVIDER = ResendProvider()
SETTINGS = {"from_email": "onboarding@resend.dev"}
SECRET = "whsec_" + base64.b64encode(b"SECRET-resend-webhook-key-bytes!").decode()
CREDENTIALS = {"api_key": "re_SECRET_api_key", "webhook_secret": SECRET}
EMAIL_ID = "56761188-7520-42d8-8898-ff6fc54ce618"


def _event(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "created_at": "2024-11-22T23:41:12.126Z",
        "data": {
            "broadcast_id": "8b146471-e88e-4322-86af-016cd36fd216",
            "created_at": "2024-11-22T23:41:11.894719+00:00",
            "email_id": EMAIL_ID,
            "from": "Acme <onboarding@resend.dev>",
            "to": ["delivered@resend.dev"],
            "subject": "Sending this example",
            "tags": {"category": "confirm_email"},
            **extra,
        },
    }


DELIVERED = _event("email.delivered")
BOUNCED = _event(
    "email.bounced",
    bounce={
        "diagnosticCode": ["smtp; 550 5.5.0 Requested action not taken: mailbox unavailable"],
        "message": "The recipient's email provider sent a hard bounce message, but didn't "
        "specify the reason for the hard bounce.",
        "subType": "General",
        "type": "Permanent",
    },
)
CLICKED = _event(
    "email.clicked",
    click={
        "ipAddress": "122.115.53.11",
        "link": "https://resend.com",
        "timestamp": "2024-11-24T05:00:57.163Z",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
    },
)
OPENED = _event("email.opened")
COMPLAINED = _event("email.complained")
FAILED = _event("email.failed", failed={"reason": "reached_daily_quota"})
DELAYED = _event("email.delivery_delayed")


def signed(
    document: dict[str, Any], timestamp: int | None = None, secret: str = SECRET
) -> CallbackRequest:
    body = json.dumps(document).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    message_id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    digest = hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "svix-id": message_id,
        "svix-timestamp": stamp,
        # A rotated-out signature first, as Svix sends while a secret is rotated.
        "svix-signature": f"v1,bm90LXRoaXMtb25l v1,{base64.b64encode(digest).decode()}",
    }
    return request(body, headers)


def only_event(document: dict[str, Any]) -> Any:
    (event,) = parse(PROVIDER, signed(document), CREDENTIALS, SETTINGS).events
    return event


def test_delivered() -> None:
    event = only_event(DELIVERED)
    assert event.kind is DeliveryEventKind.DELIVERED
    assert event.provider_message_id == EMAIL_ID
    assert event.event_id == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert event.recipient == "delivered@resend.dev"
    assert event.occurred_at == datetime(2024, 11, 22, 23, 41, 12, 126000, tzinfo=UTC)


def test_a_permanent_bounce_is_hard() -> None:
    event = only_event(BOUNCED)
    assert (event.kind, event.bounce, event.suppress) == (
        DeliveryEventKind.BOUNCED,
        BounceKind.HARD,
        True,
    )
    assert event.reason.startswith("Permanent/General: The recipient's email provider")


def test_a_transient_bounce_is_soft() -> None:
    transient = json.loads(json.dumps(BOUNCED))
    transient["data"]["bounce"]["type"] = "Transient"
    assert (only_event(transient).bounce, only_event(transient).suppress) == (
        BounceKind.SOFT,
        False,
    )


def test_opened_clicked_complained_failed() -> None:
    assert only_event(OPENED).kind is DeliveryEventKind.OPENED
    assert only_event(CLICKED).url == "https://resend.com"
    assert (only_event(COMPLAINED).kind, only_event(COMPLAINED).suppress) == (
        DeliveryEventKind.COMPLAINED,
        True,
    )
    failed = only_event(FAILED)
    assert (failed.kind, failed.reason) == (DeliveryEventKind.UNDELIVERED, "reached_daily_quota")


def test_delivery_delayed_and_unknown_types_are_dropped() -> None:
    for document in (DELAYED, _event("email.sent"), _event("contact.created")):
        assert parse(PROVIDER, signed(document), CREDENTIALS, SETTINGS).events == ()


def test_svix_worked_example_verifies() -> None:
    """Svix's documented example; its 2021 timestamp is then refused as stale, which only
    happens once the signature matched."""
    callback = request(
        b'{"test": 2432232314}',
        {
            "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "svix-timestamp": "1614265330",
            "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        },
    )
    credentials = {**CREDENTIALS, "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    assert "timestamp" in rejected(PROVIDER, callback, credentials, SETTINGS).reason


def test_a_changed_byte_is_rejected() -> None:
    callback = signed(DELIVERED)
    tampered = callback.model_copy(update={"body": callback.body.replace(b"Acme", b"Acmf")})
    assert rejected(PROVIDER, tampered, CREDENTIALS, SETTINGS).reason == "wrong signature"


def test_another_secret_is_rejected() -> None:
    other = "whsec_" + base64.b64encode(b"someone else").decode()
    callback = signed(DELIVERED, secret=other)
    assert rejected(PROVIDER, callback, CREDENTIALS, SETTINGS).reason == "wrong signature"


def test_an_old_timestamp_is_rejected() -> None:
    callback = signed(DELIVERED, int(time.time()) - 400)
    assert "timestamp" in rejected(PROVIDER, callback, CREDENTIALS, SETTINGS).reason


@pytest.mark.parametrize("header", ["svix-id", "svix-timestamp", "svix-signature"])
def test_a_missing_header_is_rejected(header: str) -> None:
    callback = signed(DELIVERED)
    headers = {k: v for k, v in callback.headers.items() if k != header}
    reason = rejected(PROVIDER, request(callback.body, headers), CREDENTIALS, SETTINGS).reason
    assert reason == f"missing {header} header"


def test_without_a_secret_every_callback_is_rejected() -> None:
    credentials = {"api_key": "re_SECRET_api_key"}
    reason = rejected(PROVIDER, signed(DELIVERED), credentials, SETTINGS).reason
    assert reason == "no webhook secret configured"


def test_the_secret_is_checked_when_stored() -> None:
    with pytest.raises(ValidationError, match="webhook_secret"):
        PROVIDER.parse_credentials({**CREDENTIALS, "webhook_secret": "not-a-whsec"})
