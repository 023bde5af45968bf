"""Infobip Email, against Infobip's own OpenAPI document for email ("Send fully featured email",
``POST /email/3/send``: the ``App`` API key header, the multipart form fields, the answer
examples and the ``requestError`` refusals; as published at
https://www.infobip.com/docs/api/channels/email/send-email, read December 2026) and the status
codes (https://www.infobip.com/docs/essentials/api-essentials/response-status-and-error-codes)."""

import httpx
import pytest
from pydantic import ValidationError

from providers.base import Attachment, ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError
from providers.infobip_email import InfobipEmailProvider
from tests.providers.harness import (
    Answer,
    ProviderCase,
    ProviderContract,
    Refusal,
    check,
    delivered,
    form_fields,
    form_parts,
)

BASE_URL = "https://xk9q2p.api.infobip.com"
URL = f"{BASE_URL}/email/3/send"
CREDENTIALS = {"api_key": "SECRET-infobip-003026bbc133714df1834b8638bb496e"}
SETTINGS = {
    "base_url": BASE_URL,
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
MESSAGE_ID = "jgzra46v9zi1ztvd62t5"


def status(group_id: int, group: str, status_id: int, name: str) -> Answer:
    """The documented 200 for a single message."""
    return Answer(
        200,
        json={
            "bulkId": "snxemd8u52v7v84iiu69",
            "messages": [
                {
                    "to": "ada@example.com",
                    "messageId": MESSAGE_ID,
                    "status": {
                        "groupId": group_id,
                        "groupName": group,
                        "id": status_id,
                        "name": name,
                        "description": "Message accepted, pending for delivery.",
                    },
                }
            ],
        },
    )


def request_error(status_code: int, message_id: str, text: str) -> Answer:
    return Answer(
        status_code,
        json={"requestError": {"serviceException": {"messageId": message_id, "text": text}}},
    )


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == (
        "App SECRET-infobip-003026bbc133714df1834b8638bb496e"
    )
    assert all(part.filename is None for part in form_parts(request))
    assert form_fields(request) == {
        "from": ["Example <noreply@example.com>"],
        "to": ["ada@example.com"],
        "subject": ["Hello"],
        "text": ["Hi Ada"],
        "html": ["<p>Hi Ada</p>"],
        "replyTo": ["help@example.com"],
        "callbackData": ["d-1"],
    }


class TestInfobipEmail(ProviderContract):
    case = ProviderCase(
        provider=InfobipEmailProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=status(1, "PENDING", 26, "PENDING_ACCEPTED"),
        expected_message_id=MESSAGE_ID,
        check_request=check_request,
        bad_credentials=request_error(401, "UNAUTHORIZED", "Unauthorized"),
        invalid_recipient=status(5, "REJECTED", 52, "REJECTED_DESTINATION"),
        required_credential="api_key",
        server_error=request_error(
            500, "GENERAL_ERROR", "Something went wrong. Please contact support."
        ),
        refusals=(
            Refusal(status(5, "REJECTED", 12, "REJECTED_NOT_ENOUGH_CREDITS"), IntegrationError),
            Refusal(status(5, "REJECTED", 51, "MISSING_TO"), RecipientError),
            Refusal(request_error(400, "BAD_REQUEST", "Bad request"), IntegrationError),
            Refusal(request_error(403, "FORBIDDEN", "Forbidden"), IntegrationError),
        ),
    )


def test_files_are_attachment_parts() -> None:
    message = MESSAGE.model_copy(
        update={
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF"),
            )
        }
    )
    _, request = delivered(TestInfobipEmail.case, TestInfobipEmail.case.success, message=message)
    files = [part for part in form_parts(request) if part.filename is not None]
    assert [(f.name, f.filename, f.content_type, f.content) for f in files] == [
        ("attachment", "a.pdf", "application/pdf", b"%PDF")
    ]


def test_the_base_url_is_required_and_named() -> None:
    with pytest.raises(ValidationError, match="base_url"):
        InfobipEmailProvider.parse_settings({"from_email": "noreply@example.com"})


def test_check_reads_the_balance() -> None:
    result, _ = check(
        TestInfobipEmail.case,
        Answer(200, json={"balance": 5, "currency": "EUR"}),
        url=f"{BASE_URL}/account/1/balance",
    )
    assert result.ok
