import json
import time

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient, SendResult
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookProvider,
    sign,
    verify_signature,
)
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, send

URL = "https://hooks.example.com/dispatcher"
SECRET = "whsec-SECRET-signing-key"
CREDENTIALS = {"signing_secret": SECRET}
SETTINGS = {"url": URL}
NOW = 1_700_000_000

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.WEBHOOK,
    to=Recipient(subscriber_id="sub-1", email="ada@example.com"),
    subject="Hello",
    title="Greeting",
    body="Hi Ada",
    html="<p>Hi Ada</p>",
    data={"order": 42},
)


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "dlv-d-1"
    timestamp = request.headers[TIMESTAMP_HEADER]
    assert abs(int(timestamp) - time.time()) < 60
    assert verify_signature(SECRET, timestamp, request.content, request.headers[SIGNATURE_HEADER])
    assert json.loads(request.content) == {
        "id": "d-1",
        "timestamp": int(timestamp),
        "channel": "webhook",
        "subject": "Hello",
        "title": "Greeting",
        "body": "Hi Ada",
        "html": "<p>Hi Ada</p>",
        "data": {"order": 42},
        "to": {"subscriber_id": "sub-1", "email": "ada@example.com"},
    }


#: Receivers' statuses and the error each must become.
REFUSALS = tuple(
    Refusal(Answer(status), expected)
    for status, expected in [
        (404, IntegrationError),
        (403, IntegrationError),
        (408, RetryableError),
        (502, RetryableError),
        (410, RecipientError),
    ]
)


class TestWebhook(ProviderContract):
    case = ProviderCase(
        provider=WebhookProvider,
        idempotency_key=lambda request: request.headers["idempotency-key"],
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, json={"id": "evt_123"}),
        expected_message_id="evt_123",
        check_request=check_request,
        bad_credentials=Answer(401, text="signature rejected"),
        # The receiver retired the endpoint.
        invalid_recipient=Answer(410, text="Gone"),
        required_credential="signing_secret",
        refusals=REFUSALS,
    )


#: Signs at ``NOW``.
PINNED = WebhookProvider(clock=lambda: NOW)
NO_CONTENT = Answer(204)


def _signed_request() -> httpx.Request:
    outcome = send(TestWebhook.case, NO_CONTENT, provider=PINNED)
    assert outcome.value == SendResult(provider_message_id=None, status_code=204)
    return outcome.request


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    request = _signed_request()
    assert request.headers[TIMESTAMP_HEADER] == str(NOW)
    assert request.headers[SIGNATURE_HEADER] == sign(SECRET, str(NOW), request.content)
    assert request.headers[SIGNATURE_HEADER].startswith("v1=")


def test_verify_signature_accepts_the_real_signature() -> None:
    request = _signed_request()
    assert verify_signature(
        SECRET, str(NOW), request.content, request.headers[SIGNATURE_HEADER], now=NOW + 10
    )


def test_verify_signature_rejects_a_tampered_body() -> None:
    request = _signed_request()
    tampered = request.content.replace(b"Hi Ada", b"Hi Eve")
    assert tampered != request.content
    assert not verify_signature(
        SECRET, str(NOW), tampered, request.headers[SIGNATURE_HEADER], now=NOW
    )


@pytest.mark.parametrize("now", [NOW + 301, NOW - 301, NOW + 86_400])
def test_verify_signature_rejects_a_timestamp_outside_the_tolerance(now: int) -> None:
    request = _signed_request()
    assert not verify_signature(
        SECRET, str(NOW), request.content, request.headers[SIGNATURE_HEADER], now=now
    )


def test_verify_signature_rejects_a_replayed_signature_with_a_new_timestamp() -> None:
    request = _signed_request()
    assert not verify_signature(
        SECRET, str(NOW + 100), request.content, request.headers[SIGNATURE_HEADER], now=NOW + 100
    )


def test_verify_signature_rejects_another_secret_and_garbage() -> None:
    request = _signed_request()
    signature = request.headers[SIGNATURE_HEADER]
    assert not verify_signature("another-secret", str(NOW), request.content, signature, now=NOW)
    assert not verify_signature(SECRET, "not-a-time", request.content, signature, now=NOW)
    assert not verify_signature(SECRET, str(NOW), request.content, "", now=NOW)


def test_verify_signature_accepts_any_of_several_signatures_while_rotating() -> None:
    request = _signed_request()
    header = f"{sign('old-secret', str(NOW), request.content)} {request.headers[SIGNATURE_HEADER]}"
    assert verify_signature(SECRET, str(NOW), request.content, header, now=NOW)
    assert verify_signature("old-secret", str(NOW), request.content, header, now=NOW)


def test_recipient_webhook_url_wins_and_stays_out_of_the_body() -> None:
    own = "https://receiver.example.org/hook?token=abc"
    message = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="sub-1", webhook_url=own)})
    sent = send(TestWebhook.case, NO_CONTENT, message=message, url=own, provider=PINNED)
    assert isinstance(sent.value, SendResult)
    body = json.loads(sent.requests[0].content)
    assert body["to"] == {"subscriber_id": "sub-1"}
    assert "token=abc" not in sent.requests[0].content.decode()


@pytest.mark.parametrize("bad_url", ["ftp://receiver.example.org/hook", "not a url", "https://"])
def test_recipient_webhook_url_must_be_http_and_is_not_echoed(bad_url: str) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=bad_url)})
    sent = send(TestWebhook.case, NO_CONTENT, message=message, provider=PINNED)
    outcome = sent.value
    assert type(outcome) is RecipientError
    assert bad_url not in str(outcome)
    assert len(sent.requests) == 0


def test_no_url_anywhere_is_an_integration_error() -> None:
    sent = send(TestWebhook.case, NO_CONTENT, settings={}, provider=PINNED)
    assert type(sent.value) is IntegrationError
    assert len(sent.requests) == 0


def test_settings_url_must_be_an_http_url() -> None:
    with pytest.raises(ValidationError) as caught:
        WebhookProvider.parse_settings({"url": "file:///etc/passwd"})
    assert "url" in str(caught.value)
