"""Mailchimp Transactional (Mandrill), against its documentation: "Send new message"
(https://mailchimp.com/developer/transactional/api/messages/send-new-message/, API 1.0, read
December 2026), its error shape and names ("Errors" of the same reference: ``status``,
``code``, ``name``, ``message``) and "Ping" (https://mailchimp.com/developer/transactional/api/users/ping/)."""

import base64
import json

import httpx
import pytest

from providers.base import Attachment, ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.mandrill import MandrillProvider
from tests.providers.harness import (
    Answer,
    ProviderCase,
    ProviderContract,
    Refusal,
    check,
    delivered,
    send,
)

URL = "https://mandrillapp.com/api/1.0/messages/send"
CREDENTIALS = {"api_key": "SECRET-mandrill-md-0123456789"}
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

MESSAGE_ID = "abc123abc123abc123abc123abc123"


def recipient(status: str, reject_reason: str | None = None) -> Answer:
    """The documented 200: one status entry per recipient."""
    return Answer(
        200,
        json=[
            {
                "email": "ada@example.com",
                "status": status,
                "reject_reason": reject_reason,
                "queued_reason": None,
                "_id": MESSAGE_ID,
            }
        ],
    )


def error(name: str, message: str, code: int = -1, status: int = 500) -> Answer:
    """The documented error shape (the API answers it with HTTP 500)."""
    return Answer(status, json={"status": "error", "code": code, "name": name, "message": message})


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert "authorization" not in request.headers
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "key": "SECRET-mandrill-md-0123456789",
        "message": {
            "from_email": "noreply@example.com",
            "from_name": "Example",
            "to": [{"email": "ada@example.com", "name": "Ada Lovelace", "type": "to"}],
            "subject": "Hello",
            "text": "Hi Ada",
            "html": "<p>Hi Ada</p>",
            "headers": {"Reply-To": "help@example.com"},
            "metadata": {"delivery_id": "d-1"},
        },
    }


REFUSALS = (
    Refusal(error("PaymentRequired", "This feature is only available for paid accounts."),
            IntegrationError, "PaymentRequired"),
    Refusal(error("Unknown_Subaccount", "No subaccount exists with the id 'x'", 12),
            IntegrationError, "Unknown_Subaccount"),
    Refusal(error("ValidationError", "You must specify a key value"), IntegrationError,
            "ValidationError"),
    Refusal(error("GeneralError", "An unexpected error occurred"), RetryableError, "GeneralError"),
    Refusal(recipient("rejected", "hard-bounce"), RecipientError, "hard-bounce"),
    Refusal(recipient("rejected", "soft-bounce"), RecipientError, "soft-bounce"),
    Refusal(recipient("rejected", "spam"), RecipientError, "spam"),
    Refusal(recipient("rejected", "unsub"), RecipientError, "unsub"),
    Refusal(recipient("rejected", "custom"), RecipientError, "custom"),
    Refusal(recipient("rejected", "rule"), RecipientError, "rule"),
    Refusal(recipient("rejected", "invalid-sender"), IntegrationError, "invalid-sender"),
    Refusal(recipient("rejected", "unsigned"), IntegrationError, "unsigned"),
    Refusal(recipient("rejected", "test-mode-limit"), IntegrationError, "test-mode-limit"),
    Refusal(recipient("invalid"), RecipientError, "invalid"),
)  # fmt: skip


class TestMandrill(ProviderContract):
    case = ProviderCase(
        provider=MandrillProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=recipient("sent"),
        expected_message_id=MESSAGE_ID,
        check_request=check_request,
        bad_credentials=error("Invalid_Key", "Invalid API key"),
        invalid_recipient=recipient("invalid"),
        required_credential="api_key",
        refusals=REFUSALS,
    )


@pytest.mark.parametrize("status", ["queued", "scheduled"])
def test_queued_and_scheduled_are_accepted(status: str) -> None:
    result, _ = delivered(TestMandrill.case, recipient(status))
    assert result.provider_message_id == MESSAGE_ID


def test_invalid_key_is_an_integration_error_whatever_the_status() -> None:
    error_ = send(TestMandrill.case, error("Invalid_Key", "Invalid API key", status=401)).value
    assert type(error_) is IntegrationError
    assert error_.provider_code == "Invalid_Key"


def test_an_answer_without_a_recipient_status_is_retried() -> None:
    assert type(send(TestMandrill.case, Answer(200, json=[])).value) is RetryableError


def test_subaccount_and_attachments() -> None:
    message = MESSAGE.model_copy(
        update={
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF"),
            )
        }
    )
    _, request = delivered(
        TestMandrill.case,
        recipient("sent"),
        message=message,
        settings={"from_email": "noreply@example.com", "subaccount": "tenant-7"},
    )
    body = json.loads(request.content)["message"]
    assert body["subaccount"] == "tenant-7"
    assert "from_name" not in body
    assert "headers" not in body
    assert body["attachments"] == [
        {"type": "application/pdf", "name": "a.pdf", "content": base64.b64encode(b"%PDF").decode()}
    ]


@pytest.mark.parametrize(
    ("answer", "ok", "detail"),
    [
        (Answer(200, json={"PING": "PONG!"}), True, "API key valid"),
        (error("Invalid_Key", "Invalid API key"), False, "Invalid_Key"),
    ],
)
def test_check(answer: Answer, ok: bool, detail: str) -> None:
    result, request = check(
        TestMandrill.case, answer, url="https://mandrillapp.com/api/1.0/users/ping2", method="POST"
    )
    assert json.loads(request.content) == {"key": CREDENTIALS["api_key"]}
    assert result.ok is ok
    assert detail in result.detail
    assert "SECRET" not in result.detail
