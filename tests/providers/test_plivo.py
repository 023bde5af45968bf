import base64
import json

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient, SendResult
from providers.errors import IntegrationError, RecipientError
from providers.plivo import PlivoProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, check, send

AUTH_ID = "MAXXXXXXXXXXXXXXXXXX"
ACCOUNT_URL = f"https://api.plivo.com/v1/Account/{AUTH_ID}"
URL = f"{ACCOUNT_URL}/Message/"
CREDENTIALS = {"auth_id": AUTH_ID, "auth_token": "SECRET-plivo-token"}
SETTINGS = {"src": "14155550111", "url": "https://hooks.example.com/plivo"}
BASIC_TOKEN = base64.b64encode(f"{AUTH_ID}:SECRET-plivo-token".encode()).decode()
API_ID = "97ceeb52-58b6-11e1-86da-77300b68f8bb"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.SMS,
    to=Recipient(phone="+14155550100"),
    body="Your code is 123456",
)


def plivo_error(status: int, error: str) -> Answer:
    """Plivo's documented error body."""
    return Answer(status, json={"api_id": API_ID, "error": error})


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Basic {BASIC_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "src": "14155550111",
        "dst": "+14155550100",
        "text": "Your code is 123456",
        "type": "sms",
        "url": "https://hooks.example.com/plivo",
    }


class TestPlivo(ProviderContract):
    case = ProviderCase(
        provider=PlivoProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            202,
            json={
                "api_id": "db342550-7f1d-11e1-8ea7-1231380bc196",
                "message": "message(s) queued",
                "message_uuid": ["db3ce55a-7f1d-11e1-8ea7-1231380bc196"],
            },
        ),
        expected_message_id="db3ce55a-7f1d-11e1-8ea7-1231380bc196",
        check_request=check_request,
        bad_credentials=plivo_error(401, "authentication failed"),
        invalid_recipient=plivo_error(400, "dst parameter is invalid"),
        required_credential="auth_token",
        rate_limited=Answer(
            429, json={"api_id": API_ID, "error": "too many requests"}, headers={"Retry-After": "7"}
        ),
        derived_secrets=(BASIC_TOKEN,),
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("14155550100 is not a valid phone number", RecipientError),
        ("invalid destination number", RecipientError),
        ("dst and src cannot be same", IntegrationError),
        ("src parameter is invalid", IntegrationError),
        ("invalid powerpack_uuid", IntegrationError),
        ("text parameter is missing", IntegrationError),
    ],
)
def test_400_blames_the_destination_only_when_it_names_it(error: str, expected: type) -> None:
    sent = send(TestPlivo.case, plivo_error(400, error))
    outcome, requests = sent.value, sent.requests
    assert len(requests) == 1
    assert type(outcome) is expected
    assert error in str(outcome)


def test_accepted_with_only_invalid_numbers_is_a_recipient_error() -> None:
    answer = Answer(
        202,
        json={
            "api_id": API_ID,
            "message": "message(s) queued",
            "message_uuid": [],
            "invalid_number": ["14155550100"],
        },
    )
    outcome = send(TestPlivo.case, answer).value
    assert type(outcome) is RecipientError
    assert outcome.provider_code == "invalid_number"


def test_not_found_account_is_integration_error() -> None:
    outcome = send(TestPlivo.case, plivo_error(404, "not found")).value
    assert type(outcome) is IntegrationError
    assert outcome.status_code == 404


def test_powerpack_replaces_src() -> None:
    settings = {"powerpack_uuid": "d35f2e82-d387-427f-8594-6fa07703b2a2"}
    sent = send(TestPlivo.case, Answer(202, json={"message_uuid": ["m-2"]}), settings=settings)
    outcome, requests = sent.value, sent.requests
    assert isinstance(outcome, SendResult)
    assert outcome.provider_message_id == "m-2"
    body = json.loads(requests[0].content)
    assert body["powerpack_uuid"] == "d35f2e82-d387-427f-8594-6fa07703b2a2"
    assert "src" not in body
    assert "url" not in body


@pytest.mark.parametrize(
    "settings",
    [{}, {"src": "14155550111", "powerpack_uuid": "d35f2e82-d387-427f-8594-6fa07703b2a2"}],
)
def test_settings_need_exactly_one_sender(settings: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one of src or powerpack_uuid"):
        PlivoProvider.parse_settings(settings)


def test_auth_id_cannot_alter_the_path() -> None:
    with pytest.raises(ValidationError, match="auth_id"):
        PlivoProvider.parse_credentials({**CREDENTIALS, "auth_id": "MA123/../other"})


def test_several_destinations_in_one_value_are_refused_before_sending() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(phone="+14155550100<14155550122")})
    sent = send(TestPlivo.case, Answer(202, json={"message_uuid": ["m"]}), message=message)
    outcome, requests = sent.value, sent.requests
    assert type(outcome) is RecipientError
    assert requests == []


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (
            Answer(
                200,
                json={
                    "account_type": "standard",
                    "auth_id": AUTH_ID,
                    "cash_credits": "12.34000",
                    "name": "Acme",
                },
            ),
            True,
        ),
        (plivo_error(401, "authentication failed"), False),
    ],
)
def test_check_reads_the_account(answer: Answer, ok: bool) -> None:
    result, request = check(TestPlivo.case, answer, url=f"{ACCOUNT_URL}/")
    assert result.ok is ok
    assert request.headers["authorization"] == f"Basic {BASIC_TOKEN}"
    assert "SECRET" not in result.detail
