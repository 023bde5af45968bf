"""Amazon SNS SMS against AWS's documentation: "Publish" in the Amazon SNS API Reference
(https://docs.aws.amazon.com/sns/latest/api/API_Publish.html, API version 2010-03-31: the Query
form, the ``PublishResponse`` XML and Publish's errors), "Common Errors"
(https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html), "Publishing to a mobile phone"
(https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html: the ``AWS.SNS.SMS.*``
message attributes) and ``GetSMSSandboxAccountStatus`` (the check).
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import ValidationError

from providers.aws_sigv4 import AwsCredentials, sign
from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.sns import SnsProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

URL = "https://sns.eu-west-1.amazonaws.com/"
CREDENTIALS = {
    "access_key_id": "AKIDEXAMPLE",
    "secret_access_key": "SECRET-aws-secret-access-key",
    "session_token": "SECRET-aws-session-token",
}
SETTINGS = {"region": "eu-west-1", "sender_id": "Example"}
MESSAGE_ID = "567910cd-659e-55d4-8ccb-5aaf14679dc0"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.SMS,
    to=Recipient(phone="+447700900123"),
    body="Your code is 123456",
)

PUBLISHED = Answer(
    200,
    text=(
        '<PublishResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/">'
        f"<PublishResult><MessageId>{MESSAGE_ID}</MessageId></PublishResult>"
        "<ResponseMetadata><RequestId>d74b8436-ae13-5ab4-a9ff-ce54dfea72a0</RequestId>"
        "</ResponseMetadata></PublishResponse>"
    ),
    headers={"Content-Type": "text/xml"},
)


def aws_error(status: int, code: str, message: str, kind: str = "Sender") -> Answer:
    """The Query API's documented ``ErrorResponse``."""
    return Answer(
        status,
        text=(
            '<ErrorResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/">'
            f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>42d59b56-7407-4c4a-be0f-4c88daeea257</RequestId></ErrorResponse>"
        ),
        headers={"Content-Type": "text/xml"},
    )


def assert_signature_matches_the_wire(request: httpx.Request) -> None:
    """Re-sign what was actually sent (headers, bytes, time) and compare with its signature."""
    authorization = request.headers["authorization"]
    amz_date = request.headers["x-amz-date"]
    scope = f"{amz_date[:8]}/eu-west-1/sns/aws4_request"
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, ")
    signed_names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "x-amz-security-token", "content-type"} <= set(signed_names)
    expected = sign(
        request.method,
        request.url.raw_path.decode().partition("?")[0],
        request.url.query.decode(),
        [
            (name, request.headers[name])
            for name in signed_names
            if name not in ("x-amz-date", "x-amz-security-token")
        ],
        request.content,
        credentials=AwsCredentials(
            "AKIDEXAMPLE", "SECRET-aws-secret-access-key", "SECRET-aws-session-token"
        ),
        region="eu-west-1",
        service="sns",
        now=datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC),
    )
    assert authorization == expected.authorization


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert_signature_matches_the_wire(request)
    assert parse_qs(request.content.decode()) == {
        "Action": ["Publish"],
        "Version": ["2010-03-31"],
        "PhoneNumber": ["+447700900123"],
        "Message": ["Your code is 123456"],
        "MessageAttributes.entry.1.Name": ["AWS.SNS.SMS.SMSType"],
        "MessageAttributes.entry.1.Value.DataType": ["String"],
        "MessageAttributes.entry.1.Value.StringValue": ["Transactional"],
        "MessageAttributes.entry.2.Name": ["AWS.SNS.SMS.SenderID"],
        "MessageAttributes.entry.2.Value.DataType": ["String"],
        "MessageAttributes.entry.2.Value.StringValue": ["Example"],
    }


#: Publish's documented errors and the common ones, and the error each must become.
REFUSALS = tuple(
    Refusal(aws_error(status, code, message), expected, code)
    for status, code, message, expected in [
        (
            400,
            "InvalidParameter",
            "Invalid parameter: PhoneNumber Reason: +4477 is not valid to publish to",
            RecipientError,
        ),
        (400, "InvalidParameter", "Invalid parameter: SenderID", IntegrationError),
        (400, "InvalidParameterValue", "Invalid parameter: PhoneNumber", RecipientError),
        (
            403,
            "AuthorizationError",
            "User is not authorized to perform SNS:Publish",
            IntegrationError,
        ),
        (403, "InvalidClientTokenId", "The security token included is invalid.", IntegrationError),
        (403, "SignatureDoesNotMatch", "The request signature does not match", IntegrationError),
        (403, "InvalidSecurity", "The request was rejected", IntegrationError),
        (
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
            IntegrationError,
        ),
        (400, "Throttling", "Rate exceeded", RetryableError),
        (429, "Throttled", "Rate exceeded", RetryableError),
        (500, "InternalError", "Internal error", RetryableError),
    ]
)


class TestSns(ProviderContract):
    case = ProviderCase(
        provider=SnsProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=PUBLISHED,
        expected_message_id=MESSAGE_ID,
        check_request=check_request,
        bad_credentials=aws_error(
            403, "InvalidClientTokenId", "The security token included in the request is invalid."
        ),
        invalid_recipient=aws_error(
            400,
            "InvalidParameter",
            "Invalid parameter: PhoneNumber Reason: +447700900123 is not valid to publish to",
        ),
        required_credential="secret_access_key",
        rate_limited=Answer(
            400,
            text=aws_error(400, "Throttling", "Rate exceeded").text,
            headers={"Retry-After": "7"},
        ),
        refusals=REFUSALS,
    )


def test_json_answer_and_promotional_origination_number() -> None:
    answer = Answer(
        200,
        json={
            "PublishResponse": {
                "PublishResult": {"MessageId": MESSAGE_ID, "SequenceNumber": None},
                "ResponseMetadata": {"RequestId": "d74b8436"},
            }
        },
    )
    outcome = send(
        TestSns.case,
        answer,
        settings={
            "region": "eu-west-1",
            "sms_type": "Promotional",
            "origination_number": "+447700900001",
        },
    )
    assert outcome.sent.provider_message_id == MESSAGE_ID
    form = parse_qs(outcome.request.content.decode())
    assert form["MessageAttributes.entry.1.Value.StringValue"] == ["Promotional"]
    assert form["MessageAttributes.entry.2.Name"] == ["AWS.MM.SMS.OriginationNumber"]
    assert form["MessageAttributes.entry.2.Value.StringValue"] == ["+447700900001"]
    assert "MessageAttributes.entry.3.Name" not in form


def test_an_escaped_error_message_is_read() -> None:
    error = send(
        TestSns.case,
        aws_error(400, "InvalidParameter", "Invalid parameter: PhoneNumber &amp; &lt;reason&gt;"),
    ).value
    assert type(error) is RecipientError
    assert "PhoneNumber & <reason>" in str(error)


def test_unicode_text_is_sent_as_utf8() -> None:
    message = MESSAGE.model_copy(update={"body": "Código: 123 ✓"})
    outcome = send(TestSns.case, PUBLISHED, message=message)
    assert parse_qs(outcome.request.content.decode())["Message"] == ["Código: 123 ✓"]
    assert_signature_matches_the_wire(outcome.request)


@pytest.mark.parametrize("phone", [None, "07700900123", "+44770<+4477"])
def test_bad_number_fails_before_sending(phone: str | None) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(phone=phone)})
    outcome = send(TestSns.case, PUBLISHED, message=message)
    assert type(outcome.value) is RecipientError
    assert outcome.requests == []


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"region": "Ireland"}, "region"),
        ({"region": "eu-west-1", "sender_id": "Has Space"}, "sender_id"),
        ({"region": "eu-west-1", "sender_id": "123456"}, "sender_id"),
        ({"region": "eu-west-1", "origination_number": "07700"}, "origination_number"),
        ({"region": "eu-west-1", "sms_type": "Bulk"}, "sms_type"),
    ],
)
def test_settings_are_validated(settings: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        SnsProvider.parse_settings(settings)


def test_check_reads_the_sandbox_status() -> None:
    answer = Answer(
        200,
        text=(
            "<GetSMSSandboxAccountStatusResponse><GetSMSSandboxAccountStatusResult>"
            "<IsInSandbox>true</IsInSandbox></GetSMSSandboxAccountStatusResult>"
            "</GetSMSSandboxAccountStatusResponse>"
        ),
    )
    result, request = check(TestSns.case, answer, url=URL, method="POST")
    assert result.ok
    assert "sandbox" in result.detail
    assert parse_qs(request.content.decode())["Action"] == ["GetSMSSandboxAccountStatus"]
    assert_signature_matches_the_wire(request)

    result, _ = check(
        TestSns.case,
        aws_error(403, "SignatureDoesNotMatch", "The request signature we calculated..."),
        url=URL,
        method="POST",
    )
    assert not result.ok
    assert "SignatureDoesNotMatch" in result.detail
