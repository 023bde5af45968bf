"""Clickatell Platform SMS against Clickatell's documentation: "SMS API reference" (One API,
https://docs.clickatell.com/channels/sms-channels/sms-api-reference/: ``POST /v1/message``, the
raw API key as ``Authorization``, the 202 ``messages`` answer with ``apiMessageId``, and the
error codes 1-111 of its error table, as tabled below).
"""

from __future__ import annotations

import json

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient
from providers.clickatell import ClickatellProvider
from providers.errors import IntegrationError, RecipientError, RetryableError
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, send

URL = "https://platform.clickatell.com/v1/message"
API_KEY = "SECRET-clickatell-key-Zq3"
MESSAGE_ID = "02ca87d5a95446e68b0ac36a0c2057f1"
CREDENTIALS = {"api_key": API_KEY}
SETTINGS = {"from_number": "+15559990000"}

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.SMS,
    to=Recipient(phone="+27999000001"),
    body="Your code is 123456",
)


def accepted(message_id: str = MESSAGE_ID) -> Answer:
    return Answer(
        202,
        json={
            "messages": [{"apiMessageId": message_id, "accepted": True, "to": "27999000001"}],
            "error": None,
        },
    )


def refused_message(code: int, description: str) -> Answer:
    """A 202 whose one message the gateway did not accept."""
    return Answer(
        202,
        json={
            "messages": [
                {
                    "apiMessageId": None,
                    "accepted": False,
                    "to": "27999000001",
                    "error": {"code": code, "description": description},
                }
            ],
            "error": None,
        },
    )


def refused_request(status: int, code: int, description: str) -> Answer:
    """A request refused whole: the top-level error."""
    return Answer(
        status, json={"messages": [], "error": {"code": code, "description": description}}
    )


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "messages": [
            {
                "channel": "sms",
                "to": "27999000001",
                "content": "Your code is 123456",
                "from": "15559990000",
            }
        ]
    }


REFUSALS = (
    *(
        Refusal(refused_message(code, "refused"), expected, str(code))
        for code, expected in [
            (25, RecipientError),
            (26, RecipientError),
            (27, RecipientError),
            (28, RecipientError),
            (24, RecipientError),
            (100, RecipientError),
            (101, RecipientError),
            (20, IntegrationError),
            (23, IntegrationError),
            (39, IntegrationError),
            (44, IntegrationError),
            (45, IntegrationError),
            (18, RetryableError),
            (19, RetryableError),
            (43, RetryableError),
        ]
    ),
    *(
        Refusal(refused_request(status, code, "refused"), expected, str(code))
        for status, code, expected in [
            (401, 1, IntegrationError),
            (401, 2, IntegrationError),
            (401, 3, IntegrationError),
            (401, 7, IntegrationError),
            (400, 21, IntegrationError),
            (400, 22, IntegrationError),
            (401, 46, IntegrationError),
            (429, 43, RetryableError),
            (500, 18, RetryableError),
        ]
    ),
)


class TestClickatell(ProviderContract):
    case = ProviderCase(
        provider=ClickatellProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=accepted(),
        expected_message_id=MESSAGE_ID,
        check_request=check_request,
        bad_credentials=refused_request(401, 1, "Invalid or missing Integration API Key"),
        invalid_recipient=refused_message(25, "Invalid recipient address"),
        required_credential="api_key",
        refusals=REFUSALS,
    )


def test_without_a_two_way_number_no_from_is_sent() -> None:
    outcome = send(TestClickatell.case, accepted("abc"), settings={})
    assert outcome.sent.provider_message_id == "abc"
    assert "from" not in json.loads(outcome.request.content)["messages"][0]


def test_an_unknown_code_inside_an_accepted_answer_is_the_integrations() -> None:
    error = send(TestClickatell.case, refused_message(999, "Something new")).value
    assert type(error) is IntegrationError
    assert error.provider_code == "999"
    assert "Something new" in str(error)


def test_a_rate_limit_inside_an_accepted_answer_honours_retry_after() -> None:
    answer = refused_message(43, "Rate limit")
    answer = Answer(answer.status, json=answer.json, headers={"Retry-After": "12"})
    error = send(TestClickatell.case, answer).value
    assert isinstance(error, RetryableError)
    assert error.retry_after == 12.0


@pytest.mark.parametrize("phone", [None, "0999000001", "+27<+28"])
def test_bad_number_fails_before_sending(phone: str | None) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(phone=phone)})
    outcome = send(TestClickatell.case, accepted(), message=message)
    assert type(outcome.value) is RecipientError
    assert outcome.requests == []
