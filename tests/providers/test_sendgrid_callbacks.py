"""SendGrid's signed Event Webhook, with the documented sample events.

Samples: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event (the event
reference's example of each event). Signing:
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
(ECDSA P-256 / SHA-256 over the timestamp header followed by the raw body, base64 DER signature).
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from providers.callbacks import BounceKind, CallbackRequest, DeliveryEventKind
from providers.sendgrid import SendGridProvider
from providers.sendgrid_callbacks import message_id
from tests.providers.callback_harness import parse, rejected, request

PROVIDER = SendGridProvider()
SETTINGS = {"from_email": "noreply@example.com"}
PRIVATE_KEY = ec.generate_private_key(ec.SECP256R1())
#: What SendGrid shows as the verification key: base64 DER SubjectPublicKeyInfo.
VERIFICATION_KEY = base64.b64encode(
    PRIVATE_KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
).decode()
CREDENTIALS = {"api_key": "SG.secret-api-key", "webhook_verification_key": VERIFICATION_KEY}

SG_MESSAGE_ID = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
#: What the send stored: the ``X-Message-Id`` answer.
X_MESSAGE_ID = "14c5d75ce93.dfd.64b469"


def _common(event: str, sg_event_id: str) -> dict[str, Any]:
    return {
        "email": "example@test.com",
        "timestamp": 1513299569,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": event,
        "category": "cat facts",
        "sg_event_id": sg_event_id,
        "sg_message_id": SG_MESSAGE_ID,
    }


#: The event reference's examples, one of each event type.
SAMPLE: list[dict[str, Any]] = [
    _common("processed", "rbtnWrG1DVDGGGFHFyun0A=="),
    {**_common("deferred", "t7LEShmowp86DTdUW8M-GQ=="), "response": "400 try again later",
     "attempt": "5"},
    {**_common("delivered", "rWVYmVk90MjZJ9iohOBa3w=="), "response": "250 OK"},
    {**_common("open", "FOTFFO0ecsBE-zxFXfs6WA=="), "useragent": "Mozilla/4.0 (compatible; "
     "MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)", "ip": "255.255.255.255"},
    {**_common("click", "kCAi1KttyQdEKHhdC-nuEA=="), "useragent": "Mozilla/4.0",
     "ip": "255.255.255.255", "url": "http://www.sendgrid.com/"},
    {**_common("bounce", "6g4ZI7SA-xmRDv57GoPIPw=="), "reason": "500 unknown recipient",
     "status": "5.0.0", "type": "bounce"},
    {**_common("bounce", "8tKJz9kdKc1XDkc4a6dL0Q=="), "reason": "550 5.7.1 blocked by policy",
     "status": "5.7.1", "type": "blocked"},
    {**_common("dropped", "zmzJhfJgAfUSOW80yEbPyw=="), "reason": "Bounced Address",
     "status": "5.0.0"},
    _common("spamreport", "37nvH5QBz858KGVYCM4uOA=="),
    _common("unsubscribe", "Krfn-9ZhAcUsnJbw6MJlkA=="),
    {**_common("group_unsubscribe", "ahSCB7xYcXFb-hEaawsPRw=="), "asm_group_id": 10},
]  # fmt: skip


def signed(body: bytes, timestamp: int | None = None) -> CallbackRequest:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = PRIVATE_KEY.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return request(
        body,
        {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        },
    )


BODY = json.dumps(SAMPLE).encode()


def test_the_documented_events_are_normalized() -> None:
    events = parse(PROVIDER, signed(BODY), CREDENTIALS, SETTINGS).events
    assert [(e.kind, e.bounce, e.suppress) for e in events] == [
        (DeliveryEventKind.DELIVERED, None, False),
        (DeliveryEventKind.OPENED, None, False),
        (DeliveryEventKind.CLICKED, None, False),
        (DeliveryEventKind.BOUNCED, BounceKind.HARD, True),
        (DeliveryEventKind.BOUNCED, BounceKind.SOFT, False),
        (DeliveryEventKind.UNDELIVERED, None, True),
        (DeliveryEventKind.COMPLAINED, None, True),
    ]
    assert {e.provider_message_id for e in events} == {X_MESSAGE_ID}
    assert {e.recipient for e in events} == {"example@test.com"}
    assert {e.occurred_at for e in events} == {datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC)}
    delivered, _, clicked, hard, soft, dropped, _ = events
    assert delivered.event_id == "rWVYmVk90MjZJ9iohOBa3w=="
    assert delivered.reason == "250 OK"
    assert clicked.url == "http://www.sendgrid.com/"
    assert hard.reason == "5.0.0 500 unknown recipient"
    assert soft.reason == "550 5.7.1 blocked by policy"
    assert dropped.reason == "Bounced Address"


def test_the_stored_message_id_is_the_prefix_before_filter() -> None:
    assert message_id(SG_MESSAGE_ID) == X_MESSAGE_ID
    assert message_id("W86EgYT6SQKk0lRflfLRsA.filterdrecv-p3las1-5bf99c48d-7l2fb-18-0") == (
        "W86EgYT6SQKk0lRflfLRsA"
    )


def test_a_changed_byte_is_rejected() -> None:
    callback = signed(BODY)
    tampered = callback.model_copy(update={"body": BODY.replace(b"250 OK", b"250 0K")})
    assert rejected(PROVIDER, tampered, CREDENTIALS, SETTINGS).reason == "wrong signature"


def test_another_key_is_rejected() -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    key = base64.b64encode(other.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
    credentials = {**CREDENTIALS, "webhook_verification_key": key.decode()}
    assert rejected(PROVIDER, signed(BODY), credentials, SETTINGS).reason == "wrong signature"


def test_an_old_timestamp_is_rejected() -> None:
    callback = signed(BODY, int(time.time()) - 600)
    assert "timestamp" in rejected(PROVIDER, callback, CREDENTIALS, SETTINGS).reason


@pytest.mark.parametrize(
    "header",
    ["X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp"],
)
def test_a_missing_header_is_rejected(header: str) -> None:
    callback = signed(BODY)
    headers = {k: v for k, v in callback.headers.items() if k != header.lower()}
    reason = rejected(PROVIDER, request(BODY, headers), CREDENTIALS, SETTINGS).reason
    assert reason == f"missing {header} header"


def test_without_a_verification_key_every_callback_is_rejected() -> None:
    credentials = {"api_key": "SG.secret-api-key"}
    reason = rejected(PROVIDER, signed(BODY), credentials, SETTINGS).reason
    assert reason == "no webhook secret configured"


def test_unknown_event_types_are_dropped() -> None:
    body = json.dumps([_common("processed", "a"), _common("machine_opened", "b")]).encode()
    assert parse(PROVIDER, signed(body), CREDENTIALS, SETTINGS).events == ()


def test_a_signed_body_that_is_not_json_is_unreadable() -> None:
    error = rejected(PROVIDER, signed(b"not json"), CREDENTIALS, SETTINGS)
    assert error.unreadable


def test_the_verification_key_is_checked_when_stored() -> None:
    with pytest.raises(ValidationError, match="webhook_verification_key"):
        PROVIDER.parse_credentials({**CREDENTIALS, "webhook_verification_key": "bm90IGEga2V5"})
