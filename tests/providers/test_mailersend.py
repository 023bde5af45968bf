"""MailerSend, against its documentation: "Send an email"
(https://developers.mailersend.com/api/v1/email.html#send-an-email, API v1, read December 2026),
"General" (https://developers.mailersend.com/general.html: authentication, validation errors and
the ``#MS`` error codes, rate limits and their headers, the daily request quota) and "Checking
API quota" (https://developers.mailersend.com/guides/checking-api-quota)."""

import base64
import json

import httpx
import pytest

from providers.base import Attachment, ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.mailersend import MailerSendProvider
from tests.providers.harness import (
    Answer,
    FakeClock,
    ProviderCase,
    ProviderContract,
    Refusal,
    check,
    delivered,
    send,
)

URL = "https://api.mailersend.com/v1/email"
CREDENTIALS = {"api_key": "mlsn.SECRET-mailersend-token"}
SETTINGS = {
    "from_email": "noreply@example.com",
    "from_name": "Example",
    "reply_to": "help@example.com",
}
MESSAGE_ID = "5e42957d51f1d94a1070a733"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.EMAIL,
    to=Recipient(email="ada@example.com", name="Ada Lovelace"),
    subject="Hello",
    body="Hi Ada",
    html="<p>Hi Ada</p>",
)


def error(
    status: int, message: str, errors: dict[str, list[str]] | None = None, **headers: str
) -> Answer:
    """MailerSend's documented error shape."""
    body: dict[str, object] = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return Answer(status, json=body, headers=headers)


def invalid(field: str, code: str, text: str) -> Answer:
    message = f"The {field} {text}. #{code}"
    return error(422, message, {field: [message]})


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == "Bearer mlsn.SECRET-mailersend-token"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "from": {"email": "noreply@example.com", "name": "Example"},
        "to": [{"email": "ada@example.com", "name": "Ada Lovelace"}],
        "subject": "Hello",
        "text": "Hi Ada",
        "html": "<p>Hi Ada</p>",
        "reply_to": {"email": "help@example.com"},
        "tags": ["delivery-d-1"],
    }


REFUSALS = (
    Refusal(invalid("to.0.email", "MS42208", "must be a valid email address"), RecipientError,
            "to.0.email"),
    Refusal(invalid("from.email", "MS42207", "domain must be verified in your account to send "
                    "emails"), IntegrationError, "MS42207"),
    Refusal(error(422, "Your account reached its email quota limit. Contact support to increase "
                  "it. #MS42204"), IntegrationError, "MS42204"),
    Refusal(error(403, "The custom API token you're using doesn't have the required permissions. "
                  "#MS40301"), IntegrationError, "MS40301"),
    Refusal(error(403, "Your account is suspended, you can't do any more requests. #MS40304"),
            IntegrationError, "MS40304"),
    Refusal(error(429, "Your account reached its API daily quota limit. Upgrade to increase it. "
                  "#MS42901", **{"x-apiquota-remaining": "0",
                                 "x-apiquota-reset": "2026-12-03T00:00:00Z"}),
            IntegrationError, "MS42901"),
    Refusal(invalid("subject", "MS42209", "field is required"), IntegrationError),
    Refusal(error(500, "Server Error"), RetryableError),
)  # fmt: skip


class TestMailerSend(ProviderContract):
    case = ProviderCase(
        provider=MailerSendProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(202, headers={"X-Message-Id": MESSAGE_ID}),
        expected_message_id=MESSAGE_ID,
        check_request=check_request,
        bad_credentials=error(401, "Unauthenticated."),
        invalid_recipient=invalid("to.0.email", "MS42208", "must be a valid email address"),
        required_credential="api_key",
        rate_limited=error(
            429,
            "Your account reached its rate limit of 120 requests/min. Please wait before trying "
            "again. #MS42903",
            **{"x-ratelimit-limit": "120", "x-ratelimit-remaining": "0", "retry-after": "7"},
        ),
        refusals=REFUSALS,
    )


def test_a_rate_limit_without_retry_after_waits_for_the_window_reset() -> None:
    clock = FakeClock()
    answer = error(
        429,
        "Your account reached its rate limit of 120 requests/min. #MS42903",
        **{"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(clock.now) + 42)},
    )
    outcome = send(TestMailerSend.case, answer, provider=MailerSendProvider(clock=clock))
    assert isinstance(outcome.error, RetryableError)
    assert outcome.error.provider_code == "MS42903"
    assert outcome.error.retry_after is not None
    assert 41 <= outcome.error.retry_after <= 42


def test_all_recipients_suppressed_is_a_recipient_error() -> None:
    answer = Answer(
        202,
        json={
            "warnings": [
                {
                    "type": "ALL_SUPPRESSED",
                    "warning": "None of the recipients were sent this email.",
                    "recipients": [
                        {"email": "ada@example.com", "name": "Ada", "reasons": ["hard_bounced"]}
                    ],
                }
            ]
        },
        headers={"X-Message-Id": MESSAGE_ID},
    )
    error_ = send(TestMailerSend.case, answer).value
    assert type(error_) is RecipientError
    assert "hard_bounced" in str(error_)


def test_some_suppressed_is_still_a_send() -> None:
    answer = Answer(
        202,
        json={"warnings": [{"type": "SOME_SUPPRESSED", "warning": "x", "recipients": []}]},
        headers={"X-Message-Id": MESSAGE_ID},
    )
    result, _ = delivered(TestMailerSend.case, answer)
    assert result.provider_message_id == MESSAGE_ID


def test_attachments() -> None:
    message = MESSAGE.model_copy(
        update={
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF"),
            )
        }
    )
    _, request = delivered(TestMailerSend.case, TestMailerSend.case.success, message=message)
    assert json.loads(request.content)["attachments"] == [
        {
            "content": base64.b64encode(b"%PDF").decode(),
            "filename": "a.pdf",
            "disposition": "attachment",
        }
    ]


@pytest.mark.parametrize(
    ("answer", "ok", "detail"),
    [
        (
            Answer(200, json={"quota": 100, "remaining": 99, "reset": "2026-12-03T00:00:00Z"}),
            True,
            "99 requests left",
        ),
        (error(401, "Unauthenticated."), False, "Unauthenticated"),
    ],
)
def test_check(answer: Answer, ok: bool, detail: str) -> None:
    result, request = check(
        TestMailerSend.case, answer, url="https://api.mailersend.com/v1/api-quota"
    )
    assert request.headers["authorization"] == "Bearer mlsn.SECRET-mailersend-token"
    assert result.ok is ok
    assert detail in result.detail
