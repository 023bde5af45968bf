"""Twilio status callbacks, signed as Twilio signs them.

The payloads are Twilio's documented status callback parameters
(https://www.twilio.com/docs/messaging/guides/track-outbound-message-status, "StatusCallback
request parameters"); the signature is computed here independently of the module, as
https://www.twilio.com/docs/usage/webhooks/webhooks-security describes it, and the known-answer
vectors are twilio-python's own (tests/unit/test_request_validator.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

import pytest

from providers.callbacks import CallbackRequest, DeliveryEventKind
from providers.twilio import TwilioProvider
from providers.twilio_callbacks import compute_signature, parse_status_callback
from tests.providers.sms_callback_harness import parse, rejected

AUTH_TOKEN = "SECRET-twilio-token-0123456789ab"
CREDENTIALS = {"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": AUTH_TOKEN}
SETTINGS = {"from_number": "+15005550006"}
URL = "https://hooks.example.com/callbacks/twilio/int-1?org=acme"
MESSAGE_SID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"


def documented(status: str, **extra: str) -> dict[str, str]:
    """The documented status callback form, for ``status``."""
    form = {
        "AccountSid": CREDENTIALS["account_sid"],
        "ApiVersion": "2010-04-01",
        "From": "+15557122661",
        "MessageSid": MESSAGE_SID,
        "MessageStatus": status,
        "SmsSid": MESSAGE_SID,
        "SmsStatus": status,
        "To": "+15558675310",
    }
    form.update(extra)
    return form


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """Twilio's documented algorithm: the URL, then each name and value sorted by name."""
    data = url + "".join(name + form[name] for name in sorted(form))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def callback(
    form: dict[str, str], *, url: str = URL, signed_url: str | None = None
) -> CallbackRequest:
    return CallbackRequest(
        url=url,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(signed_url or url, form),
        },
        body=urlencode(form).encode(),
    )


def test_twilio_python_known_answers() -> None:
    uri = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": ["CA1234567890ABCDE"],
        "Digits": ["1234"],
        "From": ["+14158675309"],
        "To": ["+18005551212"],
        "Caller": ["+14158675309"],
    }
    assert compute_signature("12345", uri, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = {"Sid": ["CA123"], "SidAccount": ["AC123"], "Digits": ["5678", "1234", "1234"]}
    assert compute_signature("12345", uri, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    # A URL with a port validates against Twilio's signature of the URL without it.
    request = CallbackRequest(
        url="https://mycompany.com:1234/myapp.php?foo=1&bar=2",
        headers={"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
        body=urlencode({name: values[0] for name, values in params.items()}).encode(),
    )
    assert parse_status_callback(request, "12345").events == ()


def test_delivered() -> None:
    form = documented("delivered", RawDlrDoneDate="2401011200")
    (event,) = parse(TwilioProvider, callback(form), CREDENTIALS, SETTINGS).events
    assert event.kind is DeliveryEventKind.DELIVERED
    assert event.provider_message_id == MESSAGE_SID
    assert event.recipient == "+15558675310"
    assert not event.suppress
    assert event.reason is None
    assert event.occurred_at.tzinfo is not None


def test_the_event_id_is_stable_per_message_and_status() -> None:
    delivered = parse(TwilioProvider, callback(documented("delivered")), CREDENTIALS, SETTINGS)
    again = parse(TwilioProvider, callback(documented("delivered")), CREDENTIALS, SETTINGS)
    read = parse(TwilioProvider, callback(documented("read")), CREDENTIALS, SETTINGS)
    assert delivered.events[0].event_id == again.events[0].event_id
    assert delivered.events[0].event_id != read.events[0].event_id
    assert read.events[0].kind is DeliveryEventKind.OPENED


@pytest.mark.parametrize(
    ("status", "code", "suppress"),
    [
        ("undelivered", "30003", False),
        ("undelivered", "30005", True),
        ("undelivered", "30006", True),
        ("failed", "21211", True),
        ("failed", "21614", True),
        ("failed", "21610", True),
        ("undelivered", "30007", False),
        ("failed", "30008", False),
        ("undelivered", "39999", False),
    ],
)
def test_failures(status: str, code: str, suppress: bool) -> None:
    form = documented(status, ErrorCode=code)
    (event,) = parse(TwilioProvider, callback(form), CREDENTIALS, SETTINGS).events
    assert event.kind is DeliveryEventKind.UNDELIVERED
    assert event.suppress is suppress
    assert event.reason is not None
    assert event.reason.startswith(code)


@pytest.mark.parametrize(
    "status", ["accepted", "scheduled", "queued", "sending", "sent", "canceled", "receiving"]
)
def test_statuses_without_a_normalized_name_are_dropped(status: str) -> None:
    assert parse(TwilioProvider, callback(documented(status)), CREDENTIALS, SETTINGS).events == ()


@pytest.mark.parametrize(
    ("called", "signed"),
    [
        ("https://hooks.example.com:443/cb?x=1", "https://hooks.example.com/cb?x=1"),
        ("https://hooks.example.com/cb?x=1", "https://hooks.example.com:443/cb?x=1"),
        ("http://hooks.example.com/cb", "http://hooks.example.com:80/cb"),
        ("https://hooks.example.com:8443/cb", "https://hooks.example.com/cb"),
    ],
)
def test_the_url_is_accepted_with_and_without_its_port(called: str, signed: str) -> None:
    request = callback(documented("delivered"), url=called, signed_url=signed)
    assert parse(TwilioProvider, request, CREDENTIALS, SETTINGS).events


def test_a_changed_byte_is_rejected() -> None:
    request = callback(documented("delivered"))
    tampered = request.model_copy(update={"body": request.body.replace(b"delivered", b"delivereD")})
    error = rejected(TwilioProvider, tampered, CREDENTIALS, SETTINGS, secrets=[AUTH_TOKEN])
    assert "X-Twilio-Signature" in error.reason


def test_another_url_is_rejected() -> None:
    request = callback(documented("delivered"), signed_url="https://evil.example.com/cb")
    rejected(TwilioProvider, request, CREDENTIALS, SETTINGS)


def test_another_token_is_rejected() -> None:
    other = {**CREDENTIALS, "auth_token": "another-token"}
    rejected(TwilioProvider, callback(documented("delivered")), other, SETTINGS)


def test_a_missing_signature_is_rejected() -> None:
    request = callback(documented("delivered"))
    unsigned = request.model_copy(update={"headers": {"content-type": "x"}})
    error = rejected(TwilioProvider, unsigned, CREDENTIALS, SETTINGS)
    assert "missing X-Twilio-Signature" in error.reason


def test_a_body_that_is_not_a_form_is_unreadable() -> None:
    request = CallbackRequest(url=URL, headers={"X-Twilio-Signature": "x"}, body=b"\xff\xfe")
    assert rejected(TwilioProvider, request, CREDENTIALS, SETTINGS).unreadable
