import base64

import httpx
import pytest

from providers.base import Attachment, ChannelType, Message, Recipient
from providers.errors import IntegrationError
from providers.mailgun import MailgunProvider
from tests.providers.harness import (
    Answer,
    ProviderCase,
    ProviderContract,
    check,
    delivered,
    form_fields,
    form_parts,
)

URL = "https://api.mailgun.net/v3/mg.example.com/messages"
CREDENTIALS = {"api_key": "SECRET-mailgun-key"}
SETTINGS = {
    "domain": "mg.example.com",
    "from_email": "noreply@mg.example.com",
    "from_name": "Example",
    "reply_to": "help@example.com",
}
BASIC_TOKEN = base64.b64encode(b"api:SECRET-mailgun-key").decode()
BASIC = f"Basic {BASIC_TOKEN}"

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
    assert request.headers["authorization"] == BASIC
    # The messages operation declares multipart/form-data only, attachments or not.
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert all(part.filename is None for part in form_parts(request))
    assert form_fields(request) == {
        "from": ["Example <noreply@mg.example.com>"],
        "to": ["Ada Lovelace <ada@example.com>"],
        "subject": ["Hello"],
        "text": ["Hi Ada"],
        "html": ["<p>Hi Ada</p>"],
        "h:Reply-To": ["help@example.com"],
        "v:delivery_id": ["d-1"],
    }


class TestMailgun(ProviderContract):
    case = ProviderCase(
        provider=MailgunProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            200,
            json={
                "id": "<20111114174239.25659.5817@mg.example.com>",
                "message": "Queued. Thank you.",
            },
        ),
        expected_message_id="<20111114174239.25659.5817@mg.example.com>",
        check_request=check_request,
        # Mailgun answers a wrong key with a plain-text 401.
        bad_credentials=Answer(401, text="Forbidden"),
        invalid_recipient=Answer(
            400, json={"message": "to parameter is not a valid address. please check documentation"}
        ),
        required_credential="api_key",
        derived_secrets=(BASIC_TOKEN,),
    )


def test_eu_region_uses_eu_host() -> None:
    result, request = delivered(
        TestMailgun.case,
        Answer(200, json={"id": "<eu@mg>", "message": "Queued. Thank you."}),
        settings={**SETTINGS, "region": "eu"},
        url="https://api.eu.mailgun.net/v3/mg.example.com/messages",
    )
    assert request.url.host == "api.eu.mailgun.net"
    assert result.provider_message_id == "<eu@mg>"


def test_attachments_go_as_multipart_files() -> None:
    message = MESSAGE.model_copy(
        update={
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF-1"),
            )
        }
    )
    _, request = delivered(TestMailgun.case, Answer(200, json={"id": "<m@mg>"}), message=message)
    files = [part for part in form_parts(request) if part.filename is not None]
    assert [(f.name, f.filename, f.content_type, f.content) for f in files] == [
        ("attachment", "a.pdf", "application/pdf", b"%PDF-1")
    ]
    assert form_fields(request)["to"] == ["Ada Lovelace <ada@example.com>"]


def test_a_message_without_attachments_is_multipart_too() -> None:
    _, request = delivered(TestMailgun.case, Answer(200, json={"id": "<m@mg>"}))
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert form_fields(request)["subject"] == ["Hello"]


def test_invalid_from_is_integration_error() -> None:
    answer = Answer(
        400, json={"message": "from parameter is not a valid address. please check documentation"}
    )
    with pytest.raises(IntegrationError):
        delivered(TestMailgun.case, answer)


def test_unknown_domain_is_integration_error() -> None:
    answer = Answer(404, json={"message": "Domain not found: mg.example.com"})
    with pytest.raises(IntegrationError):
        delivered(TestMailgun.case, answer)


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (Answer(200, json={"domain": {"name": "mg.example.com", "state": "active"}}), True),
        (Answer(401, text="Forbidden"), False),
    ],
)
def test_check_reads_the_domain(answer: Answer, ok: bool) -> None:
    result, request = check(
        TestMailgun.case, answer, url="https://api.mailgun.net/v4/domains/mg.example.com"
    )
    assert result.ok is ok
    assert request.headers["authorization"] == BASIC
    assert "SECRET" not in result.detail
