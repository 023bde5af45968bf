"""SparkPost, against its documentation: the Transmissions API reference
(https://developers.sparkpost.com/api/transmissions/, "Create a Transmission", read December
2026), the API's endpoints and authentication (https://developers.sparkpost.com/api/) and the
extended error codes (https://support.sparkpost.com/docs/tech-resources/extended-error-codes,
last updated January 2022)."""

import base64
import json

import httpx
import pytest

from providers.base import Attachment, ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.sparkpost import SparkPostProvider
from tests.providers.harness import (
    Answer,
    ProviderCase,
    ProviderContract,
    Refusal,
    check,
    delivered,
    send,
)

URL = "https://api.sparkpost.com/api/v1/transmissions"
CREDENTIALS = {"api_key": "SECRET-sparkpost-14ac5499cfdd2bb2859e"}
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


def error(status: int, code: str | None, message: str, description: str = "") -> Answer:
    """SparkPost's documented error shape."""
    entry = {"message": message}
    if description:
        entry["description"] = description
    if code is not None:
        entry["code"] = code
    return Answer(status, json={"errors": [entry]})


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    # The key alone, without a scheme.
    assert request.headers["authorization"] == "SECRET-sparkpost-14ac5499cfdd2bb2859e"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "recipients": [{"address": {"email": "ada@example.com", "name": "Ada Lovelace"}}],
        "content": {
            "from": {"email": "noreply@example.com", "name": "Example"},
            "subject": "Hello",
            "text": "Hi Ada",
            "html": "<p>Hi Ada</p>",
            "reply_to": "help@example.com",
        },
        "metadata": {"delivery_id": "d-1"},
    }


REFUSALS = tuple(
    Refusal(error(status, code, message), expected, code)
    for status, code, message, expected in [
        (403, "1100", "permission denied", IntegrationError),
        (503, "1900", "Message generation module not available", RetryableError),
        (400, "1901", "Message failed to generate", IntegrationError),
        (400, "1902", "Message generation rejected", RecipientError),
        (422, "5002", "No valid recipients in list", RecipientError),
        (420, "2101", "Exceed Sending Limit (hourly)", RetryableError),
        (420, "2103", "Exceed Sending Limit (sandbox)", IntegrationError),
        (400, "7000", "Sending domain blacklisted", IntegrationError),
        (400, "7001", "Invalid Sending/Tracking Domain", IntegrationError),
        (422, "1300", "invalid data format/type/length", IntegrationError),
        (500, "1500", "Failed to update database", RetryableError),
    ]
)


class TestSparkPost(ProviderContract):
    case = ProviderCase(
        provider=SparkPostProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            200,
            json={
                "results": {
                    "total_rejected_recipients": 0,
                    "total_accepted_recipients": 1,
                    "id": "11668787484950529",
                }
            },
        ),
        expected_message_id="11668787484950529",
        check_request=check_request,
        bad_credentials=error(401, None, "Unauthorized."),
        invalid_recipient=error(
            400,
            "1902",
            "Message generation rejected",
            "recipient address suppressed due to customer policy",
        ),
        required_credential="api_key",
        rate_limited=Answer(
            429, json={"errors": [{"message": "Too many requests"}]}, headers={"Retry-After": "7"}
        ),
        refusals=REFUSALS,
    )


def test_the_eu_region_posts_to_the_eu_host() -> None:
    eu = "https://api.eu.sparkpost.com/api/v1/transmissions"
    result, request = delivered(
        TestSparkPost.case,
        TestSparkPost.case.success,
        settings={**SETTINGS, "region": "eu"},
        url=eu,
    )
    assert str(request.url) == eu
    assert result.provider_message_id == "11668787484950529"


def test_a_200_that_rejected_the_recipient_is_a_recipient_error() -> None:
    answer = Answer(
        200,
        json={
            "results": {
                "total_rejected_recipients": 1,
                "total_accepted_recipients": 0,
                "id": "11668787484950530",
            }
        },
    )
    assert type(send(TestSparkPost.case, answer).value) is RecipientError


def test_text_only_and_attachments_in_sparkposts_shape() -> None:
    message = MESSAGE.model_copy(
        update={
            "html": None,
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF"),
            ),
        }
    )
    _, request = delivered(TestSparkPost.case, TestSparkPost.case.success, message=message)
    content = json.loads(request.content)["content"]
    assert "html" not in content
    assert content["attachments"] == [
        {"name": "a.pdf", "type": "application/pdf", "data": base64.b64encode(b"%PDF").decode()}
    ]


def test_a_recipient_without_an_address_is_refused_before_any_request() -> None:
    outcome = send(
        TestSparkPost.case,
        TestSparkPost.case.success,
        message=MESSAGE.model_copy(update={"to": Recipient(phone="+14155550100")}),
    )
    assert type(outcome.error) is RecipientError
    assert outcome.requests == []


@pytest.mark.parametrize(
    ("answer", "ok", "detail"),
    [
        (Answer(200, json={"results": {"customer_id": 1}}), True, "API key valid"),
        (error(403, "1100", "permission denied"), True, "Account: Read"),
        (error(401, None, "Unauthorized."), False, "Unauthorized"),
    ],
)
def test_check(answer: Answer, ok: bool, detail: str) -> None:
    result, request = check(
        TestSparkPost.case, answer, url="https://api.sparkpost.com/api/v1/account"
    )
    assert request.headers["authorization"] == CREDENTIALS["api_key"]
    assert result.ok is ok
    assert detail in result.detail
    assert "SECRET" not in result.detail
