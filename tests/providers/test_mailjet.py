import base64
import json

import httpx

from providers.base import Attachment, ChannelType, CheckResult, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.mailjet import MailjetProvider
from tests.providers.harness import (
    Answer,
    ProviderCase,
    ProviderContract,
    Refusal,
    check,
    delivered,
    failure,
)

URL = "https://api.mailjet.com/v3.1/send"
CREDENTIALS = {"api_key": "SECRET-mj-public-key", "secret_key": "SECRET-mj-private-key"}
SETTINGS = {
    "from_email": "noreply@example.com",
    "from_name": "Example",
    "reply_to": "help@example.com",
}
BASIC_TOKEN = base64.b64encode(b"SECRET-mj-public-key:SECRET-mj-private-key").decode()

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.EMAIL,
    to=Recipient(email="ada@example.com", name="Ada Lovelace"),
    subject="Hello",
    body="Hi Ada",
    html="<p>Hi Ada</p>",
)

SUCCESS = {
    "Messages": [
        {
            "Status": "success",
            "CustomID": "d-1",
            "To": [
                {
                    "Email": "ada@example.com",
                    "MessageUUID": "cb927469-36fd-4c02-bce4-0d199929a207",
                    "MessageID": 70650219165027410,
                    "MessageHref": "https://api.mailjet.com/v3/REST/message/70650219165027410",
                }
            ],
            "Cc": [],
            "Bcc": [],
        }
    ]
}


def message_error(status: int, code: str, text: str, related: list[str]) -> Answer:
    """A per-message validation error, as Send API v3.1 reports it."""
    return Answer(
        status,
        json={
            "Messages": [
                {
                    "Status": "error",
                    "Errors": [
                        {
                            "ErrorIdentifier": "88b5ca9f-5f1f-42e7-a45e-9ecbad0c285e",
                            "ErrorCode": code,
                            "StatusCode": status,
                            "ErrorMessage": text,
                            "ErrorRelatedTo": related,
                        }
                    ],
                }
            ]
        },
    )


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Basic {BASIC_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "Messages": [
            {
                "From": {"Email": "noreply@example.com", "Name": "Example"},
                "To": [{"Email": "ada@example.com", "Name": "Ada Lovelace"}],
                "Subject": "Hello",
                "TextPart": "Hi Ada",
                "HTMLPart": "<p>Hi Ada</p>",
                "ReplyTo": {"Email": "help@example.com"},
                "CustomID": "d-1",
            }
        ]
    }


#: Mailjet's documented refusals and the error each must become.
REFUSALS = tuple(
    Refusal(answer, expected)
    for answer, expected in [
        (
            message_error(
                403,
                "send-0008",
                '"noreply@example.com" is not an authorized sender email address for your account.',
                ["From"],
            ),
            IntegrationError,
        ),
        (
            message_error(400, "mj-0013", '"nope" is an invalid email address.', ["ReplyTo.Email"]),
            IntegrationError,
        ),
        (
            message_error(
                400,
                "send-0003",
                'At least "HTMLPart", "TextPart" or "TemplateID" must be provided.',
                ["HTMLPart", "TextPart"],
            ),
            IntegrationError,
        ),
        (
            Answer(
                401,
                json={
                    "ErrorCode": "mj-0001",
                    "ErrorMessage": "API key suspended.",
                    "StatusCode": 401,
                },
            ),
            IntegrationError,
        ),
        (
            Answer(
                500,
                json={
                    "ErrorIdentifier": "D4DF574C-0C5F-45C7-BA52-7AA8E533C3DE",
                    "ErrorMessage": "Internal Server Error",
                    "StatusCode": 500,
                },
            ),
            RetryableError,
        ),
    ]
)


class TestMailjet(ProviderContract):
    case = ProviderCase(
        provider=MailjetProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, json=SUCCESS),
        expected_message_id="70650219165027410",
        check_request=check_request,
        bad_credentials=Answer(
            401,
            json={
                "ErrorIdentifier": "06df1144-c6f3-4ca7-8885-7ec5d4344113",
                "ErrorCode": "mj-0015",
                "ErrorMessage": "API key authentication/authorization failure.",
                "StatusCode": 401,
            },
        ),
        invalid_recipient=message_error(
            400, "mj-0013", '"ada" is an invalid email address.', ["To[0].Email"]
        ),
        required_credential="secret_key",
        derived_secrets=(BASIC_TOKEN,),
        refusals=REFUSALS,
    )


def test_attachments_and_sandbox_mode() -> None:
    message = MESSAGE.model_copy(
        update={
            "html": None,
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF"),
            ),
        }
    )
    _, request = delivered(
        TestMailjet.case,
        Answer(200, json=SUCCESS),
        message=message,
        settings={**SETTINGS, "sandbox_mode": True},
    )
    body = json.loads(request.content)
    assert body["SandboxMode"] is True
    [item] = body["Messages"]
    assert item["TextPart"] == "Hi Ada"
    assert "HTMLPart" not in item
    assert item["Attachments"] == [
        {
            "ContentType": "application/pdf",
            "Filename": "a.pdf",
            "Base64Content": base64.b64encode(b"%PDF").decode(),
        }
    ]


def test_message_uuid_when_no_legacy_id() -> None:
    body = json.loads(json.dumps(SUCCESS))
    del body["Messages"][0]["To"][0]["MessageID"]
    result, _ = delivered(TestMailjet.case, Answer(200, json=body))
    assert result.provider_message_id == "cb927469-36fd-4c02-bce4-0d199929a207"


def test_a_200_whose_message_failed_is_not_a_success() -> None:
    answer = message_error(200, "mj-0013", '"ada" is an invalid email address.', ["To[0].Email"])
    caught = failure(TestMailjet.case, answer)
    assert type(caught) is RecipientError
    assert caught.provider_code == "mj-0013"


def _check(answer: Answer) -> CheckResult:
    result, request = check(TestMailjet.case, answer, url="https://api.mailjet.com/v3/REST/user")
    assert request.headers["authorization"] == f"Basic {BASIC_TOKEN}"
    return result


def test_check_accepts_a_valid_key_pair() -> None:
    result = _check(Answer(200, json={"Count": 1, "Data": [{"ID": 1}], "Total": 1}))
    assert result.ok is True


def test_check_reports_a_bad_key_pair_without_it() -> None:
    result = _check(
        Answer(
            401, json={"ErrorCode": "mj-0015", "ErrorMessage": "Not authorised.", "StatusCode": 401}
        )
    )
    assert result.ok is False
    assert "mj-0015" in result.detail
    assert "SECRET" not in result.detail
    assert BASIC_TOKEN not in result.detail
