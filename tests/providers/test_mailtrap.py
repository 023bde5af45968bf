"""Mailtrap, against its documentation: "Send email" of the Email Sending API
(https://api-docs.mailtrap.io/docs/mailtrap-api-docs/67f1d70aeb62c-send-email, read December
2026: the transactional host, bearer authentication, the body, ``{"success", "message_ids"}`` and
``{"success": false, "errors"}`` with 400/401/403/500)."""

import base64
import json

import httpx

from providers.base import Attachment, ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.mailtrap import MailtrapProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, delivered

URL = "https://send.api.mailtrap.io/api/send"
CREDENTIALS = {"api_key": "SECRET-mailtrap-a1b2c3d4e5"}
SETTINGS = {
    "from_email": "noreply@example.com",
    "from_name": "Example",
    "reply_to": "help@example.com",
    "category": "password-reset",
}
MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.EMAIL,
    to=Recipient(email="ada@example.com", name="Ada Lovelace"),
    subject="Hello",
    body="Hi Ada",
    html="<p>Hi Ada</p>",
)
MESSAGE_ID = "0c7fd939-02cf-11ed-88c2-0a58a9feac02"


def error(status: int, *errors: str) -> Answer:
    """Mailtrap's documented error shape."""
    return Answer(status, json={"success": False, "errors": list(errors)})


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == "Bearer SECRET-mailtrap-a1b2c3d4e5"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "from": {"email": "noreply@example.com", "name": "Example"},
        "to": [{"email": "ada@example.com", "name": "Ada Lovelace"}],
        "subject": "Hello",
        "text": "Hi Ada",
        "html": "<p>Hi Ada</p>",
        "category": "password-reset",
        "headers": {"Reply-To": "help@example.com"},
        "custom_variables": {"delivery_id": "d-1"},
    }


REFUSALS = (
    Refusal(error(400, "'to' address is invalid: 'ada@'"), RecipientError),
    Refusal(error(400, "'subject' is required"), IntegrationError),
    Refusal(error(400, "'from' address is invalid"), IntegrationError),
    Refusal(error(403, "Sending domain is not verified"), IntegrationError),
    Refusal(error(500, "Internal Server Error"), RetryableError),
)


class TestMailtrap(ProviderContract):
    case = ProviderCase(
        provider=MailtrapProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, json={"success": True, "message_ids": [MESSAGE_ID]}),
        expected_message_id=MESSAGE_ID,
        check_request=check_request,
        bad_credentials=error(401, "Unauthorized"),
        invalid_recipient=error(400, "'to' address is invalid: 'ada@'"),
        required_credential="api_key",
        refusals=REFUSALS,
    )


def test_the_bulk_stream_through_base_url() -> None:
    bulk = "https://bulk.api.mailtrap.io/api/send"
    _, request = delivered(
        TestMailtrap.case,
        TestMailtrap.case.success,
        settings={"from_email": "noreply@example.com", "base_url": "https://bulk.api.mailtrap.io"},
        url=bulk,
    )
    body = json.loads(request.content)
    assert str(request.url) == bulk
    assert "category" not in body
    assert "headers" not in body


def test_attachments() -> None:
    message = MESSAGE.model_copy(
        update={
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF"),
            )
        }
    )
    _, request = delivered(TestMailtrap.case, TestMailtrap.case.success, message=message)
    assert json.loads(request.content)["attachments"] == [
        {
            "content": base64.b64encode(b"%PDF").decode(),
            "filename": "a.pdf",
            "type": "application/pdf",
            "disposition": "attachment",
        }
    ]
