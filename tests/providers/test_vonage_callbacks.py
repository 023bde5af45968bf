"""Vonage SMS API delivery receipts, signed as Vonage signs them.

The receipt is the documented one of
https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts ("Understanding the
delivery receipt") with the fields signing adds (``timestamp``, ``nonce``, ``sig``, as
Nexmo/api-specification's definitions/sms.yml ``DeliveryReceipt`` lists them); the signature is
computed here as https://developer.vonage.com/en/getting-started/concepts/signing-messages
describes it, and the known-answer vectors are the official Python SDK's tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from urllib.parse import urlencode

import pytest

from providers.callbacks import CallbackRequest, DeliveryEventKind
from providers.vonage import VonageProvider
from providers.vonage_callbacks import compute_signature
from tests.providers.sms_callback_harness import parse, rejected

SECRET = "SECRET-vonage-signature-0123456789"
CREDENTIALS = {"api_key": "abcd1234", "api_secret": "SECRET-api", "signature_secret": SECRET}
SETTINGS = {"sender": "AcmeInc"}
URL = "https://hooks.example.com/callbacks/vonage/int-1"


def documented(status: str = "delivered", err_code: str = "0") -> dict[str, str]:
    return {
        "err-code": err_code,
        "message-timestamp": "2018-10-25 12:10:29",
        "messageId": "0B00000127FDBC63",
        "msisdn": "447547232824",
        "network-code": "23410",
        "price": "0.03330000",
        "scts": "1810251310",
        "status": status,
        "to": "Nexmo CLI",
        "api-key": "abcd1234",
        "client-ref": "d-1",
        "nonce": "ec11dd3e-1e7f-4db5-9467-82b02cd223b9",
    }


def signed(
    params: dict[str, str],
    method: str = "md5hash",
    *,
    secret: str = SECRET,
    timestamp: float | None = None,
) -> dict[str, str]:
    """``params`` with ``timestamp`` and ``sig``, per Vonage's manual signing steps."""
    params = {**params, "timestamp": str(int(time.time() if timestamp is None else timestamp))}
    text = "".join(
        f"&{name}={params[name].replace('&', '_').replace('=', '_')}" for name in sorted(params)
    ).encode()
    if method == "md5hash":
        digest = hashlib.md5(text + secret.encode()).hexdigest()
    else:
        digest = hmac.new(secret.encode(), text, method).hexdigest().upper()
    return {**params, "sig": digest}


def get(params: dict[str, str]) -> CallbackRequest:
    return CallbackRequest(method="GET", url=f"{URL}?{urlencode(params)}")


def post_form(params: dict[str, str]) -> CallbackRequest:
    return CallbackRequest(
        url=URL,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urlencode(params).encode(),
    )


def post_json(params: dict[str, str]) -> CallbackRequest:
    return CallbackRequest(
        url=URL, headers={"Content-Type": "application/json"}, body=json.dumps(params).encode()
    )


def test_the_sdks_known_answers() -> None:
    assert compute_signature(
        {"a": "1", "b": "2", "timestamp": "1461605396"}, "secret", "md5hash"
    ) == ("6af838ef94998832dbfc29020b564830")
    params = {"param1": "value1", "param2": "value2", "timestamp": "1234567890"}
    assert compute_signature(params, "signature_secret", "sha256") == (
        "280c4320703dbc98bfa22db676655ed2acfbfe8792b062ff7622e67f1183c287"
    )
    assert compute_signature(params, "signature_secret", "md5") == (
        "724c2bf6ca423c36e20631b11d1c5753"
    )
    special = {"param1": "value&1", "param2": "value=2", "timestamp": "1234567890"}
    assert compute_signature(special, "signature_secret", "md5") == (
        "2bbf0abafb2c55e5af6231513896a2ac"
    )


@pytest.mark.parametrize("transport", [get, post_form, post_json])
@pytest.mark.parametrize("method", ["md5hash", "md5", "sha1", "sha256", "sha512"])
def test_delivered_in_every_method_and_shape(
    transport: Callable[[dict[str, str]], CallbackRequest], method: str
) -> None:
    settings = {**SETTINGS, "signature_method": method}
    request = transport(signed(documented(), method))
    (event,) = parse(VonageProvider, request, CREDENTIALS, settings).events
    assert event.kind is DeliveryEventKind.DELIVERED
    assert event.provider_message_id == "0B00000127FDBC63"
    assert event.recipient == "+447547232824"
    assert event.occurred_at.isoformat() == "2018-10-25T12:10:29+00:00"
    assert event.reason is None


def test_the_event_id_is_stable_across_pushes_of_one_receipt() -> None:
    first = parse(VonageProvider, get(signed(documented())), CREDENTIALS, SETTINGS).events[0]
    later = signed(documented(), timestamp=time.time() - 60)
    again = parse(VonageProvider, get(later), CREDENTIALS, SETTINGS).events[0]
    failed = parse(VonageProvider, get(signed(documented("failed", "8"))), CREDENTIALS, SETTINGS)
    assert first.event_id == again.event_id
    assert first.event_id != failed.events[0].event_id


@pytest.mark.parametrize(
    ("status", "code", "suppress"),
    [
        ("failed", "3", True),
        ("rejected", "4", True),
        ("failed", "9", True),
        ("failed", "2", False),
        ("expired", "1", False),
        ("rejected", "6", False),
        ("failed", "12", False),
    ],
)
def test_failures(status: str, code: str, suppress: bool) -> None:
    request = get(signed(documented(status, code)))
    (event,) = parse(VonageProvider, request, CREDENTIALS, SETTINGS).events
    assert event.kind is DeliveryEventKind.UNDELIVERED
    assert event.suppress is suppress
    assert event.reason is not None
    assert event.reason.startswith(f"{status} ({code}: ")


@pytest.mark.parametrize("status", ["accepted", "buffered", "unknown"])
def test_statuses_without_a_normalized_name_are_dropped(status: str) -> None:
    request = get(signed(documented(status, "1")))
    assert parse(VonageProvider, request, CREDENTIALS, SETTINGS).events == ()


def test_a_changed_value_is_rejected() -> None:
    params = signed(documented())
    params["status"] = "failed"
    error = rejected(VonageProvider, get(params), CREDENTIALS, SETTINGS, secrets=[SECRET])
    assert error.reason == "sig does not match"


def test_another_method_than_the_accounts_is_rejected() -> None:
    request = get(signed(documented(), "sha256"))
    rejected(VonageProvider, request, CREDENTIALS, {**SETTINGS, "signature_method": "sha512"})


def test_an_old_timestamp_is_rejected() -> None:
    request = get(signed(documented(), timestamp=time.time() - 301))
    assert "300 seconds" in rejected(VonageProvider, request, CREDENTIALS, SETTINGS).reason


def test_an_unsigned_receipt_is_rejected() -> None:
    error = rejected(VonageProvider, get(documented()), CREDENTIALS, SETTINGS)
    assert "missing sig" in error.reason


def test_a_receipt_without_timestamp_is_rejected() -> None:
    params = signed(documented())
    del params["timestamp"]
    params["sig"] = compute_signature(params, SECRET, "md5hash")
    assert "timestamp" in rejected(VonageProvider, get(params), CREDENTIALS, SETTINGS).reason


def test_a_receipt_for_another_api_key_is_rejected() -> None:
    request = get(signed({**documented(), "api-key": "other999"}))
    assert "another API key" in rejected(VonageProvider, request, CREDENTIALS, SETTINGS).reason


def test_without_a_signature_secret_every_receipt_is_rejected() -> None:
    credentials = {"api_key": "abcd1234", "api_secret": "SECRET-api"}
    error = rejected(VonageProvider, get(signed(documented())), credentials, SETTINGS)
    assert "no webhook secret configured" in error.reason
    assert "signature_secret" in error.reason
