"""MessageBird SMS status reports, signed with a JWT as MessageBird signs them.

The report is the documented example of
https://developers.messagebird.com/api/sms-messaging/#handle-a-status-report (the parameters of
MessageBird's own signed-request example: ``id``, ``reference``, ``recipient``, ``status``,
``statusDatetime``, ``mccmnc``, ``ported``); the JWT is made here with PyJWT as
https://developers.messagebird.com/docs/verify-http-requests describes it. The known-answer
tokens are from the official SDKs' shared conformance data
(python-rest-api tests/test_request_validator/webhook_signature_test_data.json).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest

from providers.callbacks import CallbackRejectedError, CallbackRequest, DeliveryEventKind
from providers.messagebird import MessageBirdProvider
from providers.messagebird_callbacks import verify_signature
from tests.providers.sms_callback_harness import parse, rejected

SIGNING_KEY = "SECRET-PlLrKaqvZNRR5zAjm42ZT6q1SQxgbbGd"
CREDENTIALS = {"access_key": "SECRET-access", "signing_key": SIGNING_KEY}
SETTINGS = {"originator": "Acme"}
BASE = "https://hooks.example.com/callbacks/messagebird/int-1"


def documented(status: str = "delivered", **extra: str) -> dict[str, str]:
    report = {
        "id": "eef0ab57a9e049be946f3821568c2b2e",
        "reference": "d-1",
        "recipient": "31612345678",
        "status": status,
        "statusDatetime": "2019-01-11T09:17:11+00:00",
        "mccmnc": "20408",
        "ported": "1",
    }
    report.update(extra)
    return report


def token(
    url: str,
    body: bytes = b"",
    *,
    key: str = SIGNING_KEY,
    nbf: float | None = None,
    lifetime: int = 60,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    not_before = int(time.time() if nbf is None else nbf)
    payload: dict[str, Any] = {
        "iss": "MessageBird",
        "nbf": not_before,
        "exp": not_before + lifetime,
        "jti": "93e55006-a0e8-4526-a190-fa5ff00ea116",
        "url_hash": hashlib.sha256(url.encode()).hexdigest(),
    }
    if body:
        payload["payload_hash"] = hashlib.sha256(body).hexdigest()
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=algorithm)


def report(params: dict[str, str], **signing: Any) -> CallbackRequest:
    url = f"{BASE}?{urlencode(params)}"
    return CallbackRequest(
        method="GET", url=url, headers={"MessageBird-Signature-JWT": token(url, **signing)}
    )


SDK_KEY = "36efdd1aace2e26cd490f0d951138253bef2f7c6d34d18981da781555cc4cebb"
SDK_NOW = 1625479200.0  # 2021-07-05T12:00:00+02:00
SDK_VALID_POST = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJNZXNzYWdlQmlyZCIsIm5iZiI6MTYyNTQ3OTIwMCwiZXhwIj"
    "oxNjI1NDc5MjYwLCJqdGkiOiI5M2U1NTAwNi1hMGU4LTQ1MjYtYTE5MC1mYTVmZjAwZWExMTYiLCJ1cmxfaGFzaCI6IjQx"
    "ZjA1ZjBkZGQwYTIyYWIyMDlhYzQ2ZjQ3YzQ1NzJkOWNlZmEyNTdlZDc0YjI0MDA0YmFlNzUzZWNlNmMyNjAiLCJwYXlsb2"
    "FkX2hhc2giOiJkZmZkNjAyMWJiMmJkNWIwYWY2NzYyOTA4MDllYzNhNTMxOTFkZDgxYzdmNzBhNGIyODY4OGEzNjIxODI5"
    "ODZmIn0._H--TOuYFLpeEH39-rg5E3IHVkjHozBcaKVWPRC5m9I"
)
SDK_VALID_HS512 = (
    "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJNZXNzYWdlQmlyZCIsIm5iZiI6MTYyNTQ3OTIwMCwiZXhwIj"
    "oxNjI1NDc5MjYwLCJqdGkiOiI1OWEyNDRkYy1lOWFkLTRlMjMtOTc3OC0zNzFmYWEyMzhmNzIiLCJ1cmxfaGFzaCI6IjBm"
    "MTE1ZGIwNjJiN2MwZGQwMzBiMTY4NzhjOTlkZWE1YzM1NGI0OWRjMzdiMzhlYjg4NDYxNzljNzc4M2U5ZDcifQ.rd6r0iMy"
    "NGnVPCwurETphE3Y8rpAyvvnUK0S8WvGUkt2E1QSRAZ7NZJZBHw1Y_Wb5W-sK9HJr_PRL2vz4jRT3Q"
)
SDK_NONE_ALG = (
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJNZXNzYWdlQmlyZCIsImlhdCI6MTYyNTQ3OTIwMCwiZXhwIjo"
    "xNjI1NDc5MjYwLCJqdGkiOiI1OWEyNDRkYy1lOWFkLTRlMjMtOTc3OC0zNzFmYWEyMzhmNzIiLCJ1cmxfaGFzaCI6IjBmMT"
    "E1ZGIwNjJiN2MwZGQwMzBiMTY4NzhjOTlkZWE1YzM1NGI0OWRjMzdiMzhlYjg4NDYxNzljNzc4M2U5ZDcifQ."
)


def test_the_sdks_conformance_tokens() -> None:
    url = "https://example.com/path?bar=1&foo=2"
    claims = verify_signature(SDK_VALID_POST, SDK_KEY, url, b"Hello, World!", now=SDK_NOW)
    assert claims["iss"] == "MessageBird"
    verify_signature(SDK_VALID_HS512, SDK_KEY, "https://example.com/", b"", now=SDK_NOW)
    with pytest.raises(CallbackRejectedError, match="url_hash"):
        # The same query in another order is another URL.
        verify_signature(
            SDK_VALID_POST,
            SDK_KEY,
            "https://example.com/path?foo=2&bar=1",
            b"Hello, World!",
            now=SDK_NOW,
        )
    with pytest.raises(CallbackRejectedError, match="payload_hash"):
        verify_signature(SDK_VALID_POST, SDK_KEY, url, b"Hello, World?", now=SDK_NOW)
    with pytest.raises(CallbackRejectedError, match="payload_hash is set"):
        verify_signature(SDK_VALID_POST, SDK_KEY, url, b"", now=SDK_NOW)
    with pytest.raises(CallbackRejectedError, match="invalid"):
        verify_signature(SDK_NONE_ALG, SDK_KEY, "https://example.com/", b"", now=SDK_NOW)
    with pytest.raises(CallbackRejectedError, match="expired"):
        verify_signature(SDK_VALID_HS512, SDK_KEY, "https://example.com/", b"", now=SDK_NOW + 61)
    with pytest.raises(CallbackRejectedError, match="not valid yet"):
        verify_signature(SDK_VALID_HS512, SDK_KEY, "https://example.com/", b"", now=SDK_NOW - 2)


def test_delivered() -> None:
    (event,) = parse(MessageBirdProvider, report(documented()), CREDENTIALS, SETTINGS).events
    assert event.kind is DeliveryEventKind.DELIVERED
    assert event.provider_message_id == "eef0ab57a9e049be946f3821568c2b2e"
    assert event.recipient == "+31612345678"
    assert event.occurred_at.isoformat() == "2019-01-11T09:17:11+00:00"
    assert not event.suppress
    assert event.reason is None


def test_a_signed_post_body_is_read() -> None:
    body = urlencode(documented()).encode()
    request = CallbackRequest(
        url=BASE,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "MessageBird-Signature-JWT": token(BASE, body),
        },
        body=body,
    )
    (event,) = parse(MessageBirdProvider, request, CREDENTIALS, SETTINGS).events
    assert event.kind is DeliveryEventKind.DELIVERED


def test_the_event_id_is_stable_across_report_retries() -> None:
    first = parse(MessageBirdProvider, report(documented()), CREDENTIALS, SETTINGS).events[0]
    retried = report(documented(), jti="another-attempt", nbf=time.time() - 30)
    again = parse(MessageBirdProvider, retried, CREDENTIALS, SETTINGS).events[0]
    assert first.event_id == again.event_id


@pytest.mark.parametrize(
    ("status", "extra", "suppress"),
    [
        ("delivery_failed", {"statusReason": "unknown subscriber", "statusErrorCode": "1"}, True),
        ("delivery_failed", {"statusErrorCode": "9"}, True),
        (
            "delivery_failed",
            {"statusReason": "unavailable subscriber", "statusErrorCode": "27"},
            False,
        ),
        ("delivery_failed", {"statusReason": "generic delivery failure"}, False),
        ("expired", {"statusReason": "DLR not received"}, False),
    ],
)
def test_failures(status: str, extra: dict[str, str], suppress: bool) -> None:
    request = report(documented(status, **extra))
    (event,) = parse(MessageBirdProvider, request, CREDENTIALS, SETTINGS).events
    assert event.kind is DeliveryEventKind.UNDELIVERED
    assert event.suppress is suppress
    assert event.reason is not None
    assert event.reason.startswith(status)


@pytest.mark.parametrize("status", ["scheduled", "sent", "buffered"])
def test_statuses_without_a_normalized_name_are_dropped(status: str) -> None:
    assert (
        parse(MessageBirdProvider, report(documented(status)), CREDENTIALS, SETTINGS).events == ()
    )


def test_a_changed_query_is_rejected() -> None:
    request = report(documented())
    tampered = request.model_copy(update={"url": request.url.replace("delivered", "expired")})
    error = rejected(MessageBirdProvider, tampered, CREDENTIALS, SETTINGS, secrets=[SIGNING_KEY])
    assert "url_hash" in error.reason


def test_another_key_is_rejected() -> None:
    request = report(documented(), key="SECRET-another-signing-key-0123456789")
    error = rejected(MessageBirdProvider, request, CREDENTIALS, SETTINGS, secrets=[SIGNING_KEY])
    assert "Signature verification failed" in error.reason


def test_another_issuer_is_rejected() -> None:
    rejected(MessageBirdProvider, report(documented(), iss="Mallory"), CREDENTIALS, SETTINGS)


def test_an_old_token_is_rejected_even_with_a_long_exp() -> None:
    request = report(documented(), nbf=time.time() - 301, lifetime=3600)
    assert "older than 300" in rejected(MessageBirdProvider, request, CREDENTIALS, SETTINGS).reason


def test_an_expired_token_is_rejected() -> None:
    request = report(documented(), nbf=time.time() - 120)
    assert "expired" in rejected(MessageBirdProvider, request, CREDENTIALS, SETTINGS).reason


def test_a_missing_header_is_rejected() -> None:
    request = report(documented()).model_copy(update={"headers": {}})
    error = rejected(MessageBirdProvider, request, CREDENTIALS, SETTINGS)
    assert "missing MessageBird-Signature-JWT" in error.reason


def test_without_a_signing_key_every_report_is_rejected() -> None:
    credentials = {"access_key": "SECRET-access"}
    error = rejected(MessageBirdProvider, report(documented()), credentials, SETTINGS)
    assert "no webhook secret configured" in error.reason
    assert "signing_key" in error.reason
