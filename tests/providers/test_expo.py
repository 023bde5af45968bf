import json
from typing import Any

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient, SendResult
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.expo import ExpoProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, delivered, send

URL = "https://exp.host/--/api/v2/push/send"
CREDENTIALS = {"access_token": "SECRET-expo-access-token"}
PUSH_TOKEN = "ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]"
TICKET_ID = "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.PUSH,
    to=Recipient(subscriber_id="sub-1", device_tokens=(PUSH_TOKEN,)),
    title="Order shipped",
    body="Your order is on its way",
    data={"order": 42},
    options={"expo": {"sound": "default", "channelId": "orders", "unknown": "dropped"}},
)


def error_ticket(code: str, text: str = "failed") -> dict[str, Any]:
    return {"status": "error", "message": text, "details": {"error": code}}


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == "Bearer SECRET-expo-access-token"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert json.loads(request.content) == [
        {
            "to": PUSH_TOKEN,
            "title": "Order shipped",
            "body": "Your order is on its way",
            "data": {"order": 42},
            "sound": "default",
            "channelId": "orders",
        }
    ]


class TestExpo(ProviderContract):
    case = ProviderCase(
        provider=ExpoProvider,
        credentials=CREDENTIALS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, json={"data": [{"status": "ok", "id": TICKET_ID}]}),
        expected_message_id=TICKET_ID,
        check_request=check_request,
        bad_credentials=Answer(
            401,
            json={"errors": [{"code": "UNAUTHORIZED", "message": "The bearer token is invalid."}]},
        ),
        invalid_recipient=Answer(
            200,
            json={
                "data": [
                    error_ticket(
                        "DeviceNotRegistered",
                        f'"{PUSH_TOKEN}" is not a registered push notification recipient',
                    )
                ]
            },
        ),
        required_credential="access_token",
    )

    def test_missing_credential_is_named(self) -> None:
        # The access token is optional (only projects with push security need one): without it
        # the request goes out with no Authorization header.
        credentials = ExpoProvider.parse_credentials({})
        assert credentials.access_token is None
        _, request = delivered(
            self.case,
            httpx.Response(200, json={"data": [{"status": "ok", "id": "t"}]}),
            credentials={},
        )
        assert "authorization" not in request.headers


def _tickets(*tickets: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": list(tickets)})


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("DeviceNotRegistered", RecipientError),
        ("MessageTooBig", RecipientError),
        ("MessageRateExceeded", RetryableError),
        ("InvalidCredentials", IntegrationError),
        ("MismatchSenderId", IntegrationError),
        ("SomethingNew", IntegrationError),
    ],
)
def test_ticket_errors(code: str, expected: type[ProviderError]) -> None:
    outcome = send(TestExpo.case, [_tickets(error_ticket(code, "details here"))]).value
    assert type(outcome) is expected
    assert isinstance(outcome, ProviderError)
    assert outcome.provider_code == code
    assert "details here" in str(outcome)


def test_several_tokens_go_in_one_request_and_fold() -> None:
    tokens = ("ExponentPushToken[a]", "ExponentPushToken[b]", "ExponentPushToken[c]")
    message = MESSAGE.model_copy(update={"to": Recipient(device_tokens=(*tokens, tokens[0]))})
    attempt = send(
        TestExpo.case,
        [
            _tickets(
                {"status": "ok", "id": "ticket-a"},
                error_ticket("DeviceNotRegistered"),
                {"status": "ok", "id": "ticket-c"},
            )
        ],
        message=message,
    )
    outcome = attempt.value
    assert len(attempt.requests) == 1
    sent = json.loads(attempt.requests[0].content)
    assert [item["to"] for item in sent] == list(tokens)
    assert outcome == SendResult(provider_message_id="ticket-a,ticket-c", status_code=200)


def test_all_tokens_unregistered_is_a_recipient_error() -> None:
    message = MESSAGE.model_copy(
        update={"to": Recipient(device_tokens=("ExponentPushToken[a]", "ExponentPushToken[b]"))}
    )
    outcome = send(
        TestExpo.case,
        [_tickets(error_ticket("DeviceNotRegistered"), error_ticket("DeviceNotRegistered"))],
        message=message,
    ).value
    assert type(outcome) is RecipientError
    assert "all 2 device tokens" in str(outcome)


def test_more_than_100_tokens_are_sent_in_chunks() -> None:
    tokens = tuple(f"ExponentPushToken[{index}]" for index in range(150))
    message = MESSAGE.model_copy(update={"to": Recipient(device_tokens=tokens)})
    attempt = send(
        TestExpo.case,
        [
            _tickets(*({"status": "ok", "id": f"t{index}"} for index in range(100))),
            _tickets(*({"status": "ok", "id": f"t{index}"} for index in range(100, 150))),
        ],
        message=message,
    )
    outcome = attempt.value
    assert [len(json.loads(request.content)) for request in attempt.requests] == [100, 50]
    assert isinstance(outcome, SendResult)
    assert outcome.provider_message_id == ",".join(f"t{index}" for index in range(150))


def test_wrong_number_of_tickets_is_retryable() -> None:
    outcome = send(TestExpo.case, [_tickets()]).value
    assert type(outcome) is RetryableError


def test_request_validation_error_is_an_integration_error_with_its_code() -> None:
    answer = httpx.Response(
        400,
        json={"errors": [{"code": "VALIDATION_ERROR", "message": '"[0].ttl" must be a number'}]},
    )
    outcome = send(TestExpo.case, [answer]).value
    assert type(outcome) is IntegrationError
    assert "VALIDATION_ERROR" in str(outcome)
    assert outcome.status_code == 400


def test_errors_in_a_200_answer_are_an_integration_error() -> None:
    answer = httpx.Response(
        200,
        json={
            "errors": [
                {
                    "code": "PUSH_TOO_MANY_EXPERIENCE_IDS",
                    "message": "All push notification messages must be for the same project.",
                }
            ]
        },
    )
    outcome = send(TestExpo.case, [answer]).value
    assert type(outcome) is IntegrationError
    assert "PUSH_TOO_MANY_EXPERIENCE_IDS" in str(outcome)


def test_recipient_without_push_token_fails_before_any_request() -> None:
    attempt = send(
        TestExpo.case, [], message=MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s")})
    )
    outcome = attempt.value
    assert type(outcome) is RecipientError
    assert len(attempt.requests) == 0
