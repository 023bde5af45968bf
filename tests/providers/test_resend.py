import base64
import json
from typing import Any

import httpx
import pytest

from providers.base import Attachment, ChannelType, CheckResult, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.resend import ResendProvider
from tests.providers.harness import (
    Answer,
    ProviderCase,
    ProviderContract,
    Refusal,
    check,
    delivered,
)

URL = "https://api.resend.com/emails"
CREDENTIALS = {"api_key": "re_SECRET_resend_key"}
SETTINGS = {
    "from_email": "noreply@example.com",
    "from_name": "Example",
    "reply_to": "help@example.com",
}

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.EMAIL,
    to=Recipient(email="ada@example.com", name="Ada Lovelace"),
    subject="Hello",
    body="Hi Ada",
    html="<p>Hi Ada</p>",
)


def error(status: int, name: str, message: str, **headers: str) -> Answer:
    """Resend's documented error shape."""
    return Answer(
        status, json={"statusCode": status, "name": name, "message": message}, headers=headers
    )


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == "Bearer re_SECRET_resend_key"
    assert request.headers["idempotency-key"] == "dlv-d-1"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "from": "Example <noreply@example.com>",
        "to": ["Ada Lovelace <ada@example.com>"],
        "subject": "Hello",
        "text": "Hi Ada",
        "html": "<p>Hi Ada</p>",
        "reply_to": ["help@example.com"],
        "tags": [{"name": "delivery_id", "value": "d-1"}],
    }


#: Resend's documented error names and the error each must become.
REFUSALS = tuple(
    Refusal(answer, expected)
    for answer, expected in [
        (
            error(401, "missing_api_key", "Missing API key in the authorization header."),
            IntegrationError,
        ),
        (error(401, "restricted_api_key", "This API key is restricted."), IntegrationError),
        (
            error(
                403,
                "validation_error",
                "You can only send testing emails to your own email address (you@example.com).",
            ),
            IntegrationError,
        ),
        (error(422, "invalid_from_address", "Invalid `from` field."), IntegrationError),
        (
            error(422, "validation_error", "Invalid `from` field. The email address needs..."),
            IntegrationError,
        ),
        (error(400, "validation_error", "Invalid `cc` field."), RecipientError),
        (
            error(
                409,
                "invalid_idempotent_request",
                "Same idempotency key used with a different payload.",
            ),
            IntegrationError,
        ),
        (
            error(409, "concurrent_idempotent_requests", "Same idempotency key still in progress."),
            RetryableError,
        ),
        (
            error(429, "daily_quota_exceeded", "You have reached your daily email sending quota."),
            IntegrationError,
        ),
        (
            error(429, "monthly_quota_exceeded", "You have reached your monthly quota."),
            IntegrationError,
        ),
        (
            error(451, "security_error", "We may have found a security issue with the request."),
            IntegrationError,
        ),
        (error(500, "application_error", "An unexpected error occurred."), RetryableError),
        (Answer(502, text="Bad Gateway"), RetryableError),
    ]
)


class TestResend(ProviderContract):
    case = ProviderCase(
        provider=ResendProvider,
        idempotency_key=lambda request: request.headers["idempotency-key"],
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, json={"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}),
        expected_message_id="49a3999c-0ce1-4ea6-ab68-afcd6dc2e794",
        check_request=check_request,
        bad_credentials=error(403, "invalid_api_key", "API key is invalid"),
        invalid_recipient=error(
            422,
            "validation_error",
            "Invalid `to` field. The email address needs to follow the `email@example.com` "
            "or `Name <email@example.com>` format.",
        ),
        required_credential="api_key",
        rate_limited=error(
            429,
            "rate_limit_exceeded",
            "Too many requests. You can only make 2 requests per second.",
            **{"retry-after": "7"},
        ),
        server_error=error(500, "internal_server_error", "An unexpected error occurred."),
        refusals=REFUSALS,
    )


def test_idempotency_key_is_stable_across_retries() -> None:
    _, first = delivered(TestResend.case, Answer(200, json={"id": "a"}))
    _, second = delivered(TestResend.case, Answer(200, json={"id": "a"}))
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == "dlv-d-1"


def test_html_only_lets_resend_derive_text_and_attachments_are_base64() -> None:
    message = MESSAGE.model_copy(
        update={
            "body": "",
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF"),
            ),
        }
    )
    _, request = delivered(TestResend.case, Answer(200, json={"id": "m"}), message=message)
    body = json.loads(request.content)
    assert "text" not in body
    assert body["html"] == "<p>Hi Ada</p>"
    assert body["attachments"] == [
        {
            "filename": "a.pdf",
            "content": base64.b64encode(b"%PDF").decode(),
            "content_type": "application/pdf",
        }
    ]


def test_display_names_with_specials_are_quoted() -> None:
    message = MESSAGE.model_copy(
        update={"to": Recipient(email="ada@example.com", name='Lovelace, Ada "A."')}
    )
    _, request = delivered(TestResend.case, Answer(200, json={"id": "m"}), message=message)
    assert json.loads(request.content)["to"] == ['"Lovelace, Ada \\"A.\\"" <ada@example.com>']


def _check(answer: Answer) -> CheckResult:
    result, request = check(TestResend.case, answer, url="https://api.resend.com/domains")
    assert request.headers["authorization"] == "Bearer re_SECRET_resend_key"
    return result


def _domains(*entries: dict[str, Any]) -> Answer:
    return Answer(200, json={"object": "list", "data": list(entries)})


@pytest.mark.parametrize(
    ("answer", "ok", "detail"),
    [
        (_domains({"id": "d1", "name": "example.com", "status": "verified"}), True, "verified"),
        (_domains({"id": "d1", "name": "example.com", "status": "pending"}), False, "pending"),
        (_domains({"id": "d2", "name": "other.example", "status": "verified"}), False, "not added"),
        (
            error(401, "restricted_api_key", "This API key is restricted to only send emails."),
            True,
            "sending access",
        ),
        (error(403, "invalid_api_key", "API key is invalid"), False, "invalid_api_key"),
    ],
)
def test_check(answer: Answer, ok: bool, detail: str) -> None:
    result = _check(answer)
    assert result.ok is ok
    assert detail in result.detail
    assert "SECRET" not in result.detail
