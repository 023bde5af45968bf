import base64
import json
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from providers.aws_sigv4 import AwsCredentials, sign
from providers.base import Attachment, ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.ses import SesProvider
from tests.providers.harness import (
    Answer,
    ProviderCase,
    ProviderContract,
    Refusal,
    check,
    delivered,
    failure,
    send,
)

URL = "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails"
ACCOUNT_URL = "https://email.eu-west-1.amazonaws.com/v2/email/account"
CREDENTIALS = {
    "access_key_id": "AKIDEXAMPLE",
    "secret_access_key": "SECRET-aws-secret-access-key",
    "session_token": "SECRET-aws-session-token",
}
SETTINGS = {
    "region": "eu-west-1",
    "from_email": "noreply@example.com",
    "from_name": "Example",
    "reply_to": "help@example.com",
    "configuration_set_name": "transactional",
}
FIXED = datetime(2024, 5, 17, 9, 30, 0, tzinfo=UTC)

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.EMAIL,
    to=Recipient(email="ada@example.com", name="Ada Lovelace"),
    subject="Hello",
    body="Hi Ada",
    html="<p>Hi Ada</p>",
)


def error(status: int, error_type: str, message: str, **headers: str) -> Answer:
    """An SES v2 (restJson1) error: the type in ``X-Amzn-ErrorType``, ``{"message"}`` body."""
    return Answer(
        status,
        json={"message": message},
        headers={
            "x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazonaws.sesv2/",
            "x-amzn-RequestId": "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE",
            **headers,
        },
    )


def assert_signature_matches_the_wire(request: httpx.Request, *, service_path: str) -> None:
    """Re-sign what was actually sent (headers, bytes, time) and compare with its signature."""
    authorization = request.headers["authorization"]
    amz_date = request.headers["x-amz-date"]
    scope = f"{amz_date[:8]}/eu-west-1/ses/aws4_request"
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, ")
    signed_names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "host" in signed_names
    assert "x-amz-date" in signed_names
    assert "x-amz-security-token" in signed_names
    now = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    signed_headers = [
        (name, request.headers[name])
        for name in signed_names
        if name not in ("x-amz-date", "x-amz-security-token")
    ]
    expected = sign(
        request.method,
        request.url.raw_path.decode().partition("?")[0],
        request.url.query.decode(),
        signed_headers,
        request.content,
        credentials=AwsCredentials(
            "AKIDEXAMPLE", "SECRET-aws-secret-access-key", "SECRET-aws-session-token"
        ),
        region="eu-west-1",
        service="ses",
        now=now,
    )
    assert request.url.path == service_path
    assert authorization == expected.authorization
    assert request.headers["x-amz-security-token"] == "SECRET-aws-session-token"


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["host"] == "email.eu-west-1.amazonaws.com"
    assert request.headers["content-type"] == "application/json"
    assert_signature_matches_the_wire(request, service_path="/v2/email/outbound-emails")
    body = json.loads(request.content)
    assert body == {
        "FromEmailAddress": "Example <noreply@example.com>",
        "Destination": {"ToAddresses": ["Ada Lovelace <ada@example.com>"]},
        "ReplyToAddresses": ["help@example.com"],
        "ConfigurationSetName": "transactional",
        "Content": {
            "Simple": {
                "Subject": {"Data": "Hello", "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": "Hi Ada", "Charset": "UTF-8"},
                    "Html": {"Data": "<p>Hi Ada</p>", "Charset": "UTF-8"},
                },
            }
        },
        "EmailTags": [{"Name": "delivery_id", "Value": "d-1"}],
    }


#: SendEmail's documented error types and the error each must become.
REFUSALS = tuple(
    Refusal(answer, expected, answer.headers["x-amzn-ErrorType"].split(":")[0])
    for answer, expected in [
        (
            error(
                400,
                "MessageRejected",
                "Email address is not verified. The following identities failed the check "
                "in region EU-WEST-1: ada@example.com",
            ),
            IntegrationError,
        ),
        (error(400, "MessageRejected", "Message contains a virus."), RecipientError),
        (error(400, "AccountSuspendedException", "Account suspended."), IntegrationError),
        (
            error(400, "SendingPausedException", "Sending paused for this account."),
            IntegrationError,
        ),
        (
            error(400, "MailFromDomainNotVerifiedException", "MAIL FROM domain not verified."),
            IntegrationError,
        ),
        (
            error(404, "NotFoundException", "Configuration set <transactional> does not exist."),
            IntegrationError,
        ),
        (error(400, "ThrottlingException", "Rate exceeded"), RetryableError),
        (error(429, "TooManyRequestsException", "Daily message quota exceeded."), IntegrationError),
        (error(400, "BadRequestException", "Illegal address"), RecipientError),
        (
            error(400, "BadRequestException", "Missing final '@domain' in FromEmailAddress"),
            IntegrationError,
        ),
        (
            error(403, "InvalidSignatureException", "Signature expired: 20240517T093000Z"),
            IntegrationError,
        ),
    ]
)


class TestSes(ProviderContract):
    case = ProviderCase(
        provider=SesProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, json={"MessageId": "0102018f8a7c1d2e-6f1b0a3c-EXAMPLE-000000"}),
        expected_message_id="0102018f8a7c1d2e-6f1b0a3c-EXAMPLE-000000",
        check_request=check_request,
        bad_credentials=error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        invalid_recipient=error(400, "BadRequestException", "Missing final '@domain'"),
        required_credential="secret_access_key",
        # SES sends no Retry-After of its own; the harness checks that one is honoured.
        rate_limited=error(
            429,
            "TooManyRequestsException",
            "Maximum sending rate exceeded.",
            **{"Retry-After": "7"},
        ),
        server_error=error(500, "InternalFailure", "We encountered an internal error."),
        refusals=REFUSALS,
    )


#: Signs at a fixed time, so signatures and dates are known.
PINNED = SesProvider(clock=lambda: FIXED)


def test_signing_time_comes_from_the_clock() -> None:
    _, request = delivered(TestSes.case, Answer(200, json={"MessageId": "m"}), provider=PINNED)
    assert request.headers["x-amz-date"] == "20240517T093000Z"
    assert (
        "Credential=AKIDEXAMPLE/20240517/eu-west-1/ses/aws4_request"
        in (request.headers["authorization"])
    )


def test_attachments_and_text_only_body() -> None:
    message = MESSAGE.model_copy(
        update={
            "html": None,
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF-1"),
            ),
        }
    )
    _, request = delivered(
        TestSes.case, Answer(200, json={"MessageId": "m"}), message=message, provider=PINNED
    )
    simple = json.loads(request.content)["Content"]["Simple"]
    assert simple["Body"] == {"Text": {"Data": "Hi Ada", "Charset": "UTF-8"}}
    assert simple["Attachments"] == [
        {
            "FileName": "a.pdf",
            "RawContent": base64.b64encode(b"%PDF-1").decode(),
            "ContentType": "application/pdf",
            "ContentDisposition": "ATTACHMENT",
        }
    ]


def test_non_ascii_name_is_encoded_and_idn_domain_is_punycode() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(email="ada@bücher.example", name="Adá")})
    _, request = delivered(
        TestSes.case, Answer(200, json={"MessageId": "m"}), message=message, provider=PINNED
    )
    [to] = json.loads(request.content)["Destination"]["ToAddresses"]
    assert to == "=?utf-8?q?Ad=C3=A1?= <ada@xn--bcher-kva.example>"


def test_non_ascii_local_part_fails_before_sending() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(email="adá@example.com")})
    outcome = send(TestSes.case, Answer(200, json={"MessageId": "m"}), message=message)
    assert type(outcome.error) is RecipientError
    assert not outcome.requests


def test_delivery_id_is_made_a_valid_tag_value() -> None:
    message = MESSAGE.model_copy(update={"delivery_id": "org:42/d 7"})
    _, request = delivered(
        TestSes.case, Answer(200, json={"MessageId": "m"}), message=message, provider=PINNED
    )
    assert json.loads(request.content)["EmailTags"] == [
        {"Name": "delivery_id", "Value": "org_42_d_7"}
    ]


def test_error_type_from_the_body_when_the_header_is_missing() -> None:
    answer = Answer(400, json={"__type": "com.amazonaws.sesv2#AccountSuspendedException"})
    caught = failure(TestSes.case, answer, provider=PINNED)
    assert type(caught) is IntegrationError
    assert caught.provider_code == "AccountSuspendedException"


def test_base_url_override_is_signed_for_its_host() -> None:
    settings = {**SETTINGS, "base_url": "https://vpce-0abc.email.eu-west-1.vpce.amazonaws.com"}
    url = "https://vpce-0abc.email.eu-west-1.vpce.amazonaws.com/v2/email/outbound-emails"
    _, request = delivered(
        TestSes.case,
        Answer(200, json={"MessageId": "m"}),
        settings=settings,
        url=url,
        provider=PINNED,
    )
    assert request.headers["host"] == "vpce-0abc.email.eu-west-1.vpce.amazonaws.com"
    assert_signature_matches_the_wire(request, service_path="/v2/email/outbound-emails")


@pytest.mark.parametrize("region", ["eu-west", "EU-WEST-1", "https://evil.example/x"])
def test_region_is_validated(region: str) -> None:
    with pytest.raises(ValidationError, match="region"):
        SesProvider.parse_settings({**SETTINGS, "region": region})


@pytest.mark.parametrize(
    ("answer", "ok", "detail"),
    [
        (
            Answer(200, json={"SendingEnabled": True, "ProductionAccessEnabled": True}),
            True,
            "credentials valid in eu-west-1",
        ),
        (
            Answer(200, json={"SendingEnabled": True, "ProductionAccessEnabled": False}),
            True,
            "sandbox",
        ),
        (Answer(200, json={"SendingEnabled": False}), False, "disabled"),
        (
            error(403, "UnrecognizedClientException", "The security token ..."),
            False,
            "UnrecognizedClientException",
        ),
    ],
)
def test_check_reads_the_account(answer: Answer, ok: bool, detail: str) -> None:
    result, request = check(TestSes.case, answer, url=ACCOUNT_URL)
    assert result.ok is ok
    assert detail in result.detail
    assert "SECRET" not in result.detail
    assert request.content == b""
    assert_signature_matches_the_wire(request, service_path="/v2/email/account")
