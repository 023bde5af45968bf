import json

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.messagebird import MessageBirdProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, check, send

URL = "https://rest.messagebird.com/messages"
CREDENTIALS = {"access_key": "SECRET-messagebird-key"}
SETTINGS = {"originator": "Acme", "report_url": "https://hooks.example.com/messagebird"}
MESSAGE_ID = "e8077d803532c0b5937c639b60216938"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.SMS,
    to=Recipient(phone="+31612345678"),
    body="Your code is 123456",
)


def errors(status: int, *entries: tuple[int, str, str | None]) -> Answer:
    """MessageBird's documented error body: ``(code, description, parameter)`` entries."""
    return Answer(
        status,
        json={
            "errors": [
                {"code": code, "description": description, "parameter": parameter}
                for code, description, parameter in entries
            ]
        },
    )


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == "AccessKey SECRET-messagebird-key"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "originator": "Acme",
        "recipients": ["31612345678"],
        "body": "Your code is 123456",
        "datacoding": "plain",
        "reference": "d-1",
        "reportUrl": "https://hooks.example.com/messagebird",
    }


class TestMessageBird(ProviderContract):
    case = ProviderCase(
        provider=MessageBirdProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            201,
            json={
                "id": MESSAGE_ID,
                "href": f"https://rest.messagebird.com/messages/{MESSAGE_ID}",
                "direction": "mt",
                "type": "sms",
                "originator": "Acme",
                "body": "Your code is 123456",
                "reference": "d-1",
                "datacoding": "plain",
                "recipients": {
                    "totalCount": 1,
                    "totalSentCount": 1,
                    "items": [{"recipient": 31612345678, "status": "sent"}],
                },
            },
        ),
        expected_message_id=MESSAGE_ID,
        check_request=check_request,
        bad_credentials=errors(
            401, (2, "Request not allowed (incorrect access_key)", "access_key")
        ),
        invalid_recipient=errors(422, (9, "no (correct) recipients found", "recipients")),
        required_credential="access_key",
    )


@pytest.mark.parametrize(
    ("answer", "expected", "code"),
    [
        (errors(401, (2, "Request not allowed", "access_key")), IntegrationError, "2"),
        # The error code decides even when the HTTP status alone would not.
        (errors(422, (2, "Request not allowed", "access_key")), IntegrationError, "2"),
        (errors(422, (25, "Not enough balance", None)), IntegrationError, "25"),
        (errors(422, (9, "no (correct) recipients found", "recipients")), RecipientError, "9"),
        (errors(422, (10, "recipients is invalid", "recipients")), RecipientError, "10"),
        (errors(422, (10, "originator is invalid", "originator")), IntegrationError, "10"),
        (errors(422, (9, "body is required", "body")), IntegrationError, "9"),
        (errors(404, (20, "message not found", None)), IntegrationError, "20"),
        (errors(422, (99, "Internal error", None)), RetryableError, "99"),
        (errors(500, (99, "Internal error", None)), RetryableError, "99"),
    ],
)
def test_error_code_table(answer: Answer, expected: type, code: str) -> None:
    sent = send(TestMessageBird.case, answer)
    outcome, requests = sent.value, sent.requests
    assert len(requests) == 1
    assert type(outcome) is expected
    assert outcome.provider_code == code
    assert outcome.status_code == answer.status


def test_recipient_and_originator_errors_together_blame_the_integration() -> None:
    answer = errors(
        422,
        (9, "no (correct) recipients found", "recipients"),
        (10, "originator is invalid", "originator"),
    )
    outcome = send(TestMessageBird.case, answer).value
    assert type(outcome) is IntegrationError
    assert "originator is invalid" in str(outcome)


def test_access_key_error_wins_over_other_entries() -> None:
    answer = errors(
        422,
        (9, "no (correct) recipients found", "recipients"),
        (2, "Request not allowed (incorrect access_key)", "access_key"),
    )
    outcome = send(TestMessageBird.case, answer).value
    assert type(outcome) is IntegrationError
    assert outcome.provider_code == "2"


def test_unicode_text_uses_unicode_datacoding() -> None:
    message = MESSAGE.model_copy(update={"body": "Je code: 123456 🎉"})
    requests = send(TestMessageBird.case, Answer(201, json={"id": "m-u"}), message=message).requests
    body = json.loads(requests[0].content)
    assert body["datacoding"] == "unicode"
    assert body["body"] == "Je code: 123456 🎉"


def test_bad_number_fails_before_sending() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(email="ada@example.com")})
    sent = send(TestMessageBird.case, Answer(201, json={"id": "m"}), message=message)
    outcome, requests = sent.value, sent.requests
    assert type(outcome) is RecipientError
    assert requests == []


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (Answer(200, json={"payment": "prepaid", "type": "credits", "amount": 42.5}), True),
        (errors(401, (2, "Request not allowed (incorrect access_key)", "access_key")), False),
    ],
)
def test_check_reads_the_balance(answer: Answer, ok: bool) -> None:
    result, request = check(
        TestMessageBird.case, answer, url="https://rest.messagebird.com/balance"
    )
    assert result.ok is ok
    assert request.headers["authorization"] == "AccessKey SECRET-messagebird-key"
    assert "SECRET" not in result.detail
