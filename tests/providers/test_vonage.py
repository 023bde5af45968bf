import base64
from urllib.parse import parse_qs

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient, SendResult
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.vonage import STATUS_TABLE, VonageProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

URL = "https://rest.nexmo.com/sms/json"
CREDENTIALS = {"api_key": "abcd1234", "api_secret": "SECRET-vonage-secret"}
SETTINGS = {"sender": "Acme", "callback": "https://hooks.example.com/vonage"}
BASIC_TOKEN = base64.b64encode(b"abcd1234:SECRET-vonage-secret").decode()

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.SMS,
    to=Recipient(phone="+447700900000"),
    body="Your code is 123456",
)


def parts(*entries: dict[str, str]) -> Answer:
    """The documented ``/sms/json`` answer: HTTP 200 whatever each part's status."""
    return Answer(200, json={"message-count": str(len(entries)), "messages": list(entries)})


def refused(status: str, error_text: str) -> Answer:
    return parts({"status": status, "error-text": error_text})


def accepted(message_id: str) -> dict[str, str]:
    return {
        "to": "447700900000",
        "message-id": message_id,
        "status": "0",
        "remaining-balance": "15.53590000",
        "message-price": "0.03330000",
        "network": "23410",
        "client-ref": "d-1",
    }


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in request.headers
    assert parse_qs(request.content.decode()) == {
        "api_key": ["abcd1234"],
        "api_secret": ["SECRET-vonage-secret"],
        "from": ["Acme"],
        "to": ["447700900000"],
        "text": ["Your code is 123456"],
        "client-ref": ["d-1"],
        "callback": ["https://hooks.example.com/vonage"],
    }


#: Vonage's ``messages[].status`` codes (in a 200) and the error each must become.
REFUSALS = tuple(
    Refusal(refused(status, "refused"), expected, status)
    for status, expected in [
        ("1", RetryableError),
        ("2", IntegrationError),
        ("3", IntegrationError),
        ("4", IntegrationError),
        ("5", RetryableError),
        ("6", RecipientError),
        ("7", RecipientError),
        ("8", IntegrationError),
        ("9", IntegrationError),
        ("10", RetryableError),
        ("11", IntegrationError),
        ("12", RecipientError),
        ("14", IntegrationError),
        ("15", IntegrationError),
        ("22", IntegrationError),
        ("23", IntegrationError),
        ("29", IntegrationError),
        ("32", IntegrationError),
        ("33", RecipientError),
        ("42", IntegrationError),
    ]
)


class TestVonage(ProviderContract):
    case = ProviderCase(
        provider=VonageProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=parts(accepted("0C000000217B7F02")),
        expected_message_id="0C000000217B7F02",
        check_request=check_request,
        # Refusals come back as HTTP 200 with a non-zero status.
        bad_credentials=refused("4", "Bad Credentials"),
        invalid_recipient=refused("6", "Unroutable message - rejected"),
        required_credential="api_secret",
        derived_secrets=(BASIC_TOKEN,),
        refusals=REFUSALS,
    )


def test_table_covers_every_documented_status() -> None:
    documented = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "14", "15"}
    documented |= {"22", "23", "29", "32", "33"}
    assert set(STATUS_TABLE) == documented


def test_throttled_is_retryable() -> None:
    outcome = send(
        TestVonage.case, refused("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry")
    ).value
    assert isinstance(outcome, RetryableError)
    assert "throttled" in str(outcome)


@pytest.mark.parametrize(
    ("error_text", "expected"),
    [
        ("Invalid to address", RecipientError),
        ("Invalid value for parameter `to`", RecipientError),
        ("Invalid from param", IntegrationError),
        ("Invalid value for parameter `callback`", IntegrationError),
        ("Unable to process the request", IntegrationError),
    ],
)
def test_invalid_parameters_blame_the_named_parameter(error_text: str, expected: type) -> None:
    outcome = send(TestVonage.case, refused("3", error_text)).value
    assert type(outcome) is expected


def test_long_text_parts_use_the_first_message_id() -> None:
    outcome = send(
        TestVonage.case, parts(accepted("0C00000000000001"), accepted("0C00000000000002"))
    ).value
    assert isinstance(outcome, SendResult)
    assert outcome.provider_message_id == "0C00000000000001"


def test_a_refused_later_part_fails_the_send() -> None:
    outcome = send(
        TestVonage.case, parts(accepted("0C00000000000001"), {"status": "9", "error-text": "Quota"})
    ).value
    assert type(outcome) is IntegrationError
    assert outcome.provider_code == "9"


def test_answer_without_messages_is_retryable() -> None:
    outcome = send(TestVonage.case, Answer(200, json={"message-count": "0", "messages": []})).value
    assert type(outcome) is RetryableError


def test_unicode_text_is_sent_as_unicode() -> None:
    message = MESSAGE.model_copy(update={"body": "Ваш код 123456 ✅"})
    requests = send(TestVonage.case, parts(accepted("0C01")), message=message).requests
    form = parse_qs(requests[0].content.decode())
    assert form["type"] == ["unicode"]
    assert form["text"] == ["Ваш код 123456 ✅"]


def test_gsm_text_with_accents_stays_plain() -> None:
    message = MESSAGE.model_copy(update={"body": "Café à 10€ {ok}"})
    requests = send(TestVonage.case, parts(accepted("0C02")), message=message).requests
    assert "type" not in parse_qs(requests[0].content.decode())


def test_bad_number_fails_before_sending() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(phone="07700 900000")})
    sent = send(TestVonage.case, parts(accepted("0C03")), message=message)
    outcome, requests = sent.value, sent.requests
    assert type(outcome) is RecipientError
    assert requests == []


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (Answer(200, json={"value": 10.28, "autoReload": False}), True),
        (
            Answer(401, json={"error-code": "401", "error-code-label": "authentication failed"}),
            False,
        ),
    ],
)
def test_check_reads_the_balance_with_basic_auth(answer: Answer, ok: bool) -> None:
    result, request = check(
        TestVonage.case, answer, url="https://rest.nexmo.com/account/get-balance"
    )
    assert result.ok is ok
    assert request.headers["authorization"] == f"Basic {BASIC_TOKEN}"
    # The secret travels in the header, never in the query string.
    assert "SECRET" not in str(request.url)
    assert "SECRET" not in result.detail
