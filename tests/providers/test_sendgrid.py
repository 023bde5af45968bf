import base64
import json

import httpx
import pytest

from providers.base import Attachment, ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError
from providers.sendgrid import SendGridProvider
from tests.providers.harness import (
    Answer,
    ProviderCase,
    ProviderContract,
    check,
    delivered,
    send,
)

URL = "https://api.sendgrid.com/v3/mail/send"
CREDENTIALS = {"api_key": "SECRET-sendgrid-key"}
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


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == "Bearer SECRET-sendgrid-key"
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert body["personalizations"] == [
        {
            "to": [{"email": "ada@example.com", "name": "Ada Lovelace"}],
            "custom_args": {"delivery_id": "d-1"},
        }
    ]
    assert body["from"] == {"email": "noreply@example.com", "name": "Example"}
    assert body["reply_to"] == {"email": "help@example.com"}
    assert body["subject"] == "Hello"
    assert body["content"] == [
        {"type": "text/plain", "value": "Hi Ada"},
        {"type": "text/html", "value": "<p>Hi Ada</p>"},
    ]
    assert "custom_args" not in body
    assert "attachments" not in body


class TestSendGrid(ProviderContract):
    case = ProviderCase(
        provider=SendGridProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        # Mail Send answers 202 with an empty body; the id is a response header.
        success=Answer(202, text="", headers={"X-Message-Id": "W4jRZ5d0Q2qfXk1b0SOdfg"}),
        expected_message_id="W4jRZ5d0Q2qfXk1b0SOdfg",
        check_request=check_request,
        bad_credentials=Answer(
            401,
            json={
                "errors": [
                    {
                        "field": None,
                        "message": "The provided authorization grant is invalid, expired, "
                        "or revoked",
                    }
                ]
            },
        ),
        invalid_recipient=Answer(
            400,
            json={
                "errors": [
                    {
                        "message": "Does not contain a valid address.",
                        "field": "personalizations.0.to.0.email",
                        "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to",
                    }
                ]
            },
        ),
        required_credential="api_key",
        rate_limited=Answer(
            429,
            json={"errors": [{"field": None, "message": "too many requests"}]},
            headers={"Retry-After": "7"},
        ),
    )


def test_eu_region_uses_eu_host() -> None:
    result, request = delivered(
        TestSendGrid.case,
        Answer(202, headers={"X-Message-Id": "eu-1"}),
        settings={**SETTINGS, "region": "eu"},
        url="https://api.eu.sendgrid.com/v3/mail/send",
    )
    assert request.url.host == "api.eu.sendgrid.com"
    assert result.provider_message_id == "eu-1"


def test_attachments_are_base64_and_text_only_message() -> None:
    message = MESSAGE.model_copy(
        update={
            "html": None,
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF"),
            ),
        }
    )
    _, request = delivered(
        TestSendGrid.case, Answer(202, headers={"X-Message-Id": "m"}), message=message
    )
    body = json.loads(request.content)
    assert body["content"] == [{"type": "text/plain", "value": "Hi Ada"}]
    assert body["attachments"] == [
        {
            "content": base64.b64encode(b"%PDF").decode(),
            "filename": "a.pdf",
            "type": "application/pdf",
            "disposition": "attachment",
        }
    ]


@pytest.mark.parametrize(
    ("update", "subject"),
    [
        ({"subject": None}, "Hi Ada"),
        ({"subject": "  "}, "Hi Ada"),
        (
            {"subject": "", "body": "\n  Your code is 123456  \nIt expires soon"},
            "Your code is 123456",
        ),
        ({"subject": None, "body": "x" * 100}, "x" * 77 + "…"),
        ({"subject": None, "body": ""}, "(no subject)"),
    ],
    ids=["none", "blank", "first-text-line", "long-line-cut", "no-text"],
)
def test_a_message_without_subject_never_sends_an_empty_one(
    update: dict[str, object], subject: str
) -> None:
    # Mail Send declares ``subject`` with minLength 1: an empty one is a 400 that would burn the
    # integration and its fallbacks for a template that merely has no subject.
    _, request = delivered(
        TestSendGrid.case,
        Answer(202, headers={"X-Message-Id": "m"}),
        message=MESSAGE.model_copy(update=update),
    )
    assert json.loads(request.content)["subject"] == subject


def test_unverified_sender_is_integration_error() -> None:
    answer = Answer(
        403,
        json={
            "errors": [
                {
                    "message": "The from address does not match a verified Sender Identity.",
                    "field": "from",
                    "help": None,
                }
            ]
        },
    )
    with pytest.raises(IntegrationError):
        delivered(TestSendGrid.case, answer)


def test_invalid_from_field_is_not_a_recipient_error() -> None:
    answer = Answer(
        400,
        json={"errors": [{"message": "Does not contain a valid address.", "field": "from.email"}]},
    )
    with pytest.raises(IntegrationError):
        delivered(TestSendGrid.case, answer)


def test_recipient_without_email_fails_before_sending() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(phone="+15550000000")})
    outcome = send(TestSendGrid.case, Answer(202), message=message)
    assert isinstance(outcome.error, RecipientError)
    assert not outcome.requests


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (Answer(200, json={"scopes": ["mail.send", "alerts.read"]}), True),
        (Answer(200, json={"scopes": ["alerts.read"]}), False),
        (
            Answer(401, json={"errors": [{"field": None, "message": "authorization required"}]}),
            False,
        ),
    ],
)
def test_check_reads_scopes(answer: Answer, ok: bool) -> None:
    result, request = check(TestSendGrid.case, answer, url="https://api.sendgrid.com/v3/scopes")
    assert result.ok is ok
    assert request.headers["authorization"] == "Bearer SECRET-sendgrid-key"
    assert "SECRET" not in result.detail
