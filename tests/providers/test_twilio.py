import base64
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient, SendResult
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.twilio import TwilioProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
SERVICE_SID = "MG0123456789abcdef0123456789abcdef"
ACCOUNT_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
URL = f"{ACCOUNT_URL}/Messages.json"
CREDENTIALS = {"account_sid": ACCOUNT_SID, "auth_token": "SECRET-twilio-token"}
SETTINGS = {"from_number": "+15005550006", "status_callback": "https://hooks.example.com/twilio"}
BASIC_TOKEN = base64.b64encode(f"{ACCOUNT_SID}:SECRET-twilio-token".encode()).decode()

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.SMS,
    to=Recipient(phone="+14155550100"),
    body="Your code is 123456",
)

MESSAGE_SID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"


def twilio_error(status: int, code: int, message: str) -> Answer:
    """Twilio's documented error body."""
    return Answer(
        status,
        json={
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Basic {BASIC_TOKEN}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "To": ["+14155550100"],
        "Body": ["Your code is 123456"],
        "From": ["+15005550006"],
        "StatusCallback": ["https://hooks.example.com/twilio"],
    }


#: Twilio's documented error codes and the error each must become.
REFUSALS = tuple(
    Refusal(twilio_error(status, code, "refused"), expected, str(code))
    for status, code, expected in [
        (401, 20003, IntegrationError),
        (429, 20429, RetryableError),
        (400, 21211, RecipientError),
        (400, 21408, IntegrationError),
        (400, 21606, IntegrationError),
        (400, 21608, IntegrationError),
        (400, 21610, RecipientError),
        (400, 21611, RetryableError),
        (400, 21612, RecipientError),
        (400, 21614, RecipientError),
        (400, 21617, RecipientError),
    ]
)


class TestTwilio(ProviderContract):
    case = ProviderCase(
        provider=TwilioProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            201,
            json={
                "account_sid": ACCOUNT_SID,
                "api_version": "2010-04-01",
                "body": "Your code is 123456",
                "direction": "outbound-api",
                "error_code": None,
                "from": "+15005550006",
                "sid": MESSAGE_SID,
                "status": "queued",
                "to": "+14155550100",
                "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{MESSAGE_SID}.json",
            },
        ),
        expected_message_id=MESSAGE_SID,
        check_request=check_request,
        bad_credentials=twilio_error(401, 20003, "Authenticate"),
        invalid_recipient=twilio_error(400, 21211, "Invalid 'To' Phone Number: +14155550100"),
        required_credential="auth_token",
        rate_limited=Answer(
            429,
            json={
                "code": 20429,
                "message": "Too Many Requests",
                "more_info": "https://www.twilio.com/docs/errors/20429",
                "status": 429,
            },
            headers={"Retry-After": "7"},
        ),
        derived_secrets=(BASIC_TOKEN,),
        refusals=REFUSALS,
    )


def test_unknown_code_falls_back_to_http_status() -> None:
    outcome = send(TestTwilio.case, twilio_error(400, 21999, "Something new")).value
    assert type(outcome) is IntegrationError
    assert outcome.provider_code == "21999"
    assert "Something new" in str(outcome)

    outcome = send(TestTwilio.case, twilio_error(500, 20500, "Internal Server Error")).value
    assert type(outcome) is RetryableError
    assert outcome.provider_code == "20500"


def test_queue_overflow_honours_retry_after() -> None:
    answer = twilio_error(400, 21611, "queue full")
    answer = Answer(answer.status, json=answer.json, headers={"Retry-After": "30"})
    outcome = send(TestTwilio.case, answer).value
    assert isinstance(outcome, RetryableError)
    assert outcome.retry_after == 30.0


def test_messaging_service_without_from_number() -> None:
    sent = send(
        TestTwilio.case,
        Answer(201, json={"sid": "SM1"}),
        settings={"messaging_service_sid": SERVICE_SID},
    )
    assert isinstance(sent.value, SendResult)
    form = parse_qs(sent.requests[0].content.decode())
    assert form["MessagingServiceSid"] == [SERVICE_SID]
    assert "From" not in form
    assert "StatusCallback" not in form


def test_edge_base_url() -> None:
    url = f"https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    sent = send(
        TestTwilio.case,
        Answer(201, json={"sid": "SM2"}),
        settings={**SETTINGS, "base_url": "https://api.dublin.ie1.twilio.com/"},
        url=url,
    )
    outcome = sent.value
    assert isinstance(outcome, SendResult)
    assert outcome.provider_message_id == "SM2"
    assert sent.requests[0].url.host == "api.dublin.ie1.twilio.com"


def test_number_with_separators_is_sent_as_e164() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(phone="+1 (415) 555-0100")})
    sent = send(TestTwilio.case, Answer(201, json={"sid": "SM3"}), message=message)
    assert parse_qs(sent.requests[0].content.decode())["To"] == ["+14155550100"]


@pytest.mark.parametrize("phone", [None, "", "4155550100", "+1415<+1416555", "+0123456789"])
def test_bad_number_fails_before_sending(phone: str | None) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(phone=phone)})
    sent = send(TestTwilio.case, Answer(201, json={"sid": "SM4"}), message=message)
    assert type(sent.value) is RecipientError
    assert sent.requests == []


def test_empty_body_fails_before_sending() -> None:
    sent = send(
        TestTwilio.case,
        Answer(201, json={"sid": "SM5"}),
        message=MESSAGE.model_copy(update={"body": "  "}),
    )
    assert type(sent.value) is RecipientError
    assert sent.requests == []


def test_settings_need_a_sender() -> None:
    with pytest.raises(ValidationError, match="from_number or messaging_service_sid"):
        TwilioProvider.parse_settings({"status_callback": "https://hooks.example.com"})


@pytest.mark.parametrize("sid", ["AC123", "SK0123456789abcdef0123456789abcdef", f"{ACCOUNT_SID}/x"])
def test_account_sid_is_validated(sid: str) -> None:
    with pytest.raises(ValidationError, match="account_sid"):
        TwilioProvider.parse_credentials({**CREDENTIALS, "account_sid": sid})


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (Answer(200, json={"sid": ACCOUNT_SID, "status": "active", "type": "Full"}), True),
        (Answer(200, json={"sid": ACCOUNT_SID, "status": "suspended", "type": "Full"}), False),
        (twilio_error(401, 20003, "Authenticate"), False),
    ],
)
def test_check_reads_the_account(answer: Answer, ok: bool) -> None:
    result, request = check(TestTwilio.case, answer, url=f"{ACCOUNT_URL}.json")
    assert result.ok is ok
    assert request.headers["authorization"] == f"Basic {BASIC_TOKEN}"
    assert "SECRET" not in result.detail
    assert BASIC_TOKEN not in result.detail
