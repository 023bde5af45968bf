import base64
import json

import httpx

from providers.base import Attachment, ChannelType, CheckResult, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.postmark import PostmarkProvider
from tests.providers.harness import (
    Answer,
    ProviderCase,
    ProviderContract,
    Refusal,
    check,
    delivered,
    failure,
)

URL = "https://api.postmarkapp.com/email"
CREDENTIALS = {"server_token": "SECRET-postmark-server-token"}
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


def error(status: int, code: int, message: str) -> Answer:
    """Postmark's documented error body: ``{"ErrorCode", "Message"}``."""
    return Answer(status, json={"ErrorCode": code, "Message": message})


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["x-postmark-server-token"] == "SECRET-postmark-server-token"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "From": "Example <noreply@example.com>",
        "To": "Ada Lovelace <ada@example.com>",
        "Subject": "Hello",
        "TextBody": "Hi Ada",
        "HtmlBody": "<p>Hi Ada</p>",
        "ReplyTo": "help@example.com",
        "MessageStream": "outbound",
        "Metadata": {"delivery_id": "d-1"},
    }


#: Postmark's documented refusals and the error each must become.
REFUSALS = tuple(
    Refusal(answer, expected)
    for answer, expected in [
        (
            error(
                422,
                406,
                "You tried to send to recipient(s) that have been marked as inactive. "
                "Found inactive addresses: ada@example.com.",
            ),
            RecipientError,
        ),
        (error(422, 300, "Invalid 'Cc' address: 'nope'."), RecipientError),
        (error(422, 300, "Invalid 'From' address: 'noreply'."), IntegrationError),
        (
            error(
                422,
                400,
                "The 'From' address you supplied (noreply@example.com) is not a Sender Signature "
                "on your account.",
            ),
            IntegrationError,
        ),
        (error(422, 401, "Sender signature not confirmed."), IntegrationError),
        (error(422, 405, "Not allowed to send: you have run out of credits."), IntegrationError),
        (error(422, 412, "Your account is pending approval."), IntegrationError),
        (error(422, 411, "Forbidden attachment type: a.exe."), IntegrationError),
        (error(422, 100, "Maintenance."), RetryableError),
        (Answer(503, text="Service Unavailable"), RetryableError),
        # A 200 whose body reports an error is not a success.
        (error(200, 406, "Inactive recipient."), RecipientError),
    ]
)


class TestPostmark(ProviderContract):
    case = ProviderCase(
        provider=PostmarkProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            200,
            json={
                "To": "ada@example.com",
                "SubmittedAt": "2024-05-17T09:30:00.0000000-04:00",
                "MessageID": "0a129aee-e1cd-480d-b08d-4f48548ff48d",
                "ErrorCode": 0,
                "Message": "OK",
            },
        ),
        expected_message_id="0a129aee-e1cd-480d-b08d-4f48548ff48d",
        check_request=check_request,
        bad_credentials=error(
            401,
            10,
            "The Server Token you provided in the X-Postmark-Server-Token request "
            "header was invalid.",
        ),
        invalid_recipient=error(
            422,
            300,
            "Error parsing 'To': Illegal email address 'ada'. It must contain the '@' symbol.",
        ),
        required_credential="server_token",
        rate_limited=Answer(
            429,
            json={"ErrorCode": 429, "Message": "Rate limit exceeded."},
            headers={"Retry-After": "7"},
        ),
        refusals=REFUSALS,
    )


def test_attachments_and_text_only_body() -> None:
    message = MESSAGE.model_copy(
        update={
            "html": None,
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF"),
            ),
        }
    )
    _, request = delivered(
        TestPostmark.case, Answer(200, json={"ErrorCode": 0, "MessageID": "m"}), message=message
    )
    body = json.loads(request.content)
    assert body["TextBody"] == "Hi Ada"
    assert "HtmlBody" not in body
    assert body["Attachments"] == [
        {
            "Name": "a.pdf",
            "Content": base64.b64encode(b"%PDF").decode(),
            "ContentType": "application/pdf",
        }
    ]


def test_message_stream_setting_is_sent() -> None:
    _, request = delivered(
        TestPostmark.case,
        Answer(200, json={"ErrorCode": 0, "MessageID": "m"}),
        settings={**SETTINGS, "message_stream": "notifications"},
    )
    assert json.loads(request.content)["MessageStream"] == "notifications"


def test_error_code_is_kept() -> None:
    caught = failure(TestPostmark.case, error(422, 406, "Inactive recipient."))
    assert caught.provider_code == "406"
    assert "ErrorCode 406" in str(caught)


def _check(answer: Answer) -> CheckResult:
    result, request = check(TestPostmark.case, answer, url="https://api.postmarkapp.com/server")
    assert request.headers["x-postmark-server-token"] == "SECRET-postmark-server-token"
    return result


def test_check_reads_the_server() -> None:
    result = _check(Answer(200, json={"ID": 1, "Name": "Production"}))
    assert result.ok is True
    assert "Production" in result.detail


def test_check_reports_a_bad_token_without_it() -> None:
    result = _check(error(401, 10, "Bad or missing Server API token."))
    assert result.ok is False
    assert "ErrorCode 10" in result.detail
    assert "SECRET" not in result.detail
