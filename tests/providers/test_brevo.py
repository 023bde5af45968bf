import base64
import json
import uuid

import httpx

from providers.base import Attachment, ChannelType, CheckResult, Message, Recipient
from providers.brevo import BrevoProvider
from providers.errors import IntegrationError, RecipientError, RetryableError
from tests.providers.harness import (
    Answer,
    ProviderCase,
    ProviderContract,
    Refusal,
    check,
    delivered,
    failure,
)

URL = "https://api.brevo.com/v3/smtp/email"
CREDENTIALS = {"api_key": "xkeysib-SECRET-brevo-key"}
SETTINGS = {
    "from_email": "noreply@example.com",
    "from_name": "Example",
    "reply_to": "help@example.com",
}

DELIVERY_ID = "0b9d4c1e-7f3a-4e2b-9c5d-6a8e1f2b3c4d"

MESSAGE = Message(
    delivery_id=DELIVERY_ID,
    channel=ChannelType.EMAIL,
    to=Recipient(email="ada@example.com", name="Ada Lovelace"),
    subject="Hello",
    body="Hi Ada",
    html="<p>Hi Ada</p>",
)


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["api-key"] == "xkeysib-SECRET-brevo-key"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {
        "sender": {"email": "noreply@example.com", "name": "Example"},
        "to": [{"email": "ada@example.com", "name": "Ada Lovelace"}],
        "subject": "Hello",
        "htmlContent": "<p>Hi Ada</p>",
        "textContent": "Hi Ada",
        "replyTo": {"email": "help@example.com"},
        "headers": {"idempotencyKey": DELIVERY_ID, "X-Mailin-custom": DELIVERY_ID},
    }


#: Brevo's documented refusals and the error each must become.
REFUSALS = tuple(
    Refusal(answer, expected)
    for answer, expected in [
        (
            Answer(400, json={"code": "INVALID_PARAMETER", "message": "email is not valid in cc"}),
            RecipientError,
        ),
        (
            Answer(
                400, json={"code": "invalid_parameter", "message": "valid sender email required"}
            ),
            IntegrationError,
        ),
        (
            Answer(
                400,
                json={
                    "code": "invalid_parameter",
                    "message": "Unsupported file extension in attachment: a.exe",
                },
            ),
            IntegrationError,
        ),
        (
            Answer(402, json={"code": "not_enough_credits", "message": "Not enough credits"}),
            IntegrationError,
        ),
        (
            Answer(
                403,
                json={
                    "code": "permission_denied",
                    "message": "Unable to send email. Your SMTP account is not yet activated.",
                },
            ),
            IntegrationError,
        ),
        (Answer(500, json={"code": "internal_error", "message": "Internal error"}), RetryableError),
    ]
)


class TestBrevo(ProviderContract):
    case = ProviderCase(
        provider=BrevoProvider,
        idempotency_key=lambda request: json.loads(request.content)["headers"]["idempotencyKey"],
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(201, json={"messageId": "<202405170930.12345678901@smtp-relay.mailin.fr>"}),
        expected_message_id="<202405170930.12345678901@smtp-relay.mailin.fr>",
        check_request=check_request,
        bad_credentials=Answer(401, json={"code": "unauthorized", "message": "Key not found"}),
        invalid_recipient=Answer(
            400, json={"code": "invalid_parameter", "message": "email is not valid in to"}
        ),
        required_credential="api_key",
        rate_limited=Answer(
            429,
            json={"code": "too_many_requests", "message": "Too many requests"},
            headers={"Retry-After": "7", "x-sib-ratelimit-reset": "30"},
        ),
        refusals=REFUSALS,
    )


def test_idempotency_key_is_brevos_header_with_a_uuid_stable_across_retries() -> None:
    # Brevo de-duplicates on ``idempotencyKey`` holding a UUID; an ``Idempotency-Key`` header in
    # the message's headers is just another mail header, so retries were sent twice.
    _, first = delivered(TestBrevo.case, Answer(201, json={"messageId": "<m>"}))
    _, retry = delivered(TestBrevo.case, Answer(201, json={"messageId": "<m>"}))
    headers = json.loads(first.content)["headers"]
    assert "Idempotency-Key" not in headers
    assert headers["idempotencyKey"] == DELIVERY_ID
    assert json.loads(retry.content)["headers"]["idempotencyKey"] == DELIVERY_ID


def test_idempotency_key_of_a_non_uuid_delivery_id_is_a_stable_name_based_uuid() -> None:
    def key(delivery_id: str) -> str:
        message = MESSAGE.model_copy(update={"delivery_id": delivery_id})
        _, request = delivered(
            TestBrevo.case, Answer(201, json={"messageId": "<m>"}), message=message
        )
        return str(json.loads(request.content)["headers"]["idempotencyKey"])

    assert uuid.UUID(key("d-1")).version == 5
    assert key("d-1") == key("d-1")
    assert key("d-2") != key("d-1")


def test_text_only_message_gets_escaped_html_as_the_api_requires() -> None:
    message = MESSAGE.model_copy(update={"html": None, "body": "Tom & Jerry\n<b>hi</b>"})
    _, request = delivered(TestBrevo.case, Answer(201, json={"messageId": "<m>"}), message=message)
    body = json.loads(request.content)
    assert body["textContent"] == "Tom & Jerry\n<b>hi</b>"
    assert body["htmlContent"] == (
        "<html><body>Tom &amp; Jerry<br>\n&lt;b&gt;hi&lt;/b&gt;</body></html>"
    )


def test_html_only_message_sends_no_text_content() -> None:
    _, request = delivered(
        TestBrevo.case,
        Answer(201, json={"messageId": "m"}),
        message=MESSAGE.model_copy(update={"body": ""}),
    )
    body = json.loads(request.content)
    assert body["htmlContent"] == "<p>Hi Ada</p>"
    assert "textContent" not in body


def test_attachments_are_base64_with_names() -> None:
    message = MESSAGE.model_copy(
        update={
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF"),
            )
        }
    )
    _, request = delivered(TestBrevo.case, Answer(201, json={"messageId": "<m>"}), message=message)
    assert json.loads(request.content)["attachment"] == [
        {"content": base64.b64encode(b"%PDF").decode(), "name": "a.pdf"}
    ]


def test_rate_limit_reset_header_is_used_without_retry_after() -> None:
    answer = Answer(
        429,
        json={"code": "too_many_requests", "message": "Too many requests"},
        headers={"x-sib-ratelimit-limit": "1000", "x-sib-ratelimit-reset": "12"},
    )
    caught = failure(TestBrevo.case, answer)
    assert isinstance(caught, RetryableError)
    assert caught.retry_after == 12.0


def _check(answer: Answer) -> CheckResult:
    result, request = check(TestBrevo.case, answer, url="https://api.brevo.com/v3/account")
    assert request.headers["api-key"] == "xkeysib-SECRET-brevo-key"
    return result


def test_check_reads_the_account() -> None:
    result = _check(Answer(200, json={"email": "ops@example.com", "companyName": "Example"}))
    assert result.ok is True
    assert "Example" in result.detail


def test_check_reports_a_bad_key_without_it() -> None:
    result = _check(Answer(401, json={"code": "unauthorized", "message": "Key not found"}))
    assert result.ok is False
    assert "unauthorized" in result.detail
    assert "SECRET" not in result.detail
