"""LINE Messaging API, against its reference (developers.line.biz, Messaging API reference as
published in 2025): "Send push message" (``POST /v2/bot/message/push``, ``sentMessages``),
"Retry failed API requests" (``X-Line-Retry-Key``, a UUID; 409 once accepted with
``x-line-accepted-request-id``), "Status codes" and the error response (``{"message",
"details": [{"message", "property"}]}``) and "Get bot info" (``GET /v2/bot/info``); and LINE's
OpenAPI document (github.com/line/line-openapi, messaging-api.yml: ``pushMessage`` with the
``X-Line-Retry-Key`` UUID header, ``PushMessageResponse``, and ``ErrorResponse`` carrying
``sentMessages`` on 409)."""

import json
import uuid

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError
from providers.line import LineProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

URL = "https://api.line.me/v2/bot/message/push"
TOKEN = "SECRETlinechannelaccesstoken0123456789/abc="
CREDENTIALS = {"channel_access_token": TOKEN}
USER_ID = "U4af4980629a0c4f6d8f6b4b5e1f0e8aa"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1", chat_id=USER_ID),
    title="Your order shipped",
    body="Order 1234 is on its way.",
)
SUCCESS = Answer(
    200, json={"sentMessages": [{"id": "461230966842064897", "quoteToken": "IStG5h1Tz7b..."}]}
)


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert uuid.UUID(request.headers["x-line-retry-key"])
    assert json.loads(request.content) == {
        "to": USER_ID,
        "messages": [{"type": "text", "text": "Your order shipped\nOrder 1234 is on its way."}],
    }


INVALID_TO = Answer(
    400, json={"message": "The property, 'to', in the request body is invalid (line: -, column: -)"}
)


class TestLine(ProviderContract):
    case = ProviderCase(
        provider=LineProvider,
        credentials=CREDENTIALS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=SUCCESS,
        expected_message_id="461230966842064897",
        check_request=check_request,
        bad_credentials=Answer(
            401,
            json={
                "message": "Authentication failed. Confirm that the access token in the "
                "authorization header is valid."
            },
        ),
        invalid_recipient=INVALID_TO,
        required_credential="channel_access_token",
        rate_limited=Answer(
            429,
            json={"message": "The API rate limit has been exceeded. Try again later."},
            headers={"Retry-After": "7"},
        ),
        idempotency_key=lambda request: request.headers["x-line-retry-key"],
        refusals=(
            Refusal(INVALID_TO, RecipientError),
            Refusal(
                Answer(
                    400,
                    json={
                        "message": "The request body has 1 error(s)",
                        "details": [{"message": "May not be empty", "property": "to"}],
                    },
                ),
                RecipientError,
            ),
            Refusal(
                Answer(
                    400,
                    json={
                        "message": "The request body has 1 error(s)",
                        "details": [
                            {
                                "message": "Length must be between 0 and 5000",
                                "property": "messages[0].text",
                            }
                        ],
                    },
                ),
                IntegrationError,
            ),
            Refusal(
                Answer(
                    403, json={"message": "Access to this API is not available for your account"}
                ),
                IntegrationError,
            ),
        ),
    )


def test_a_retry_key_already_accepted_is_the_first_sends_success() -> None:
    answer = Answer(
        409,
        json={"message": "The retry key is already accepted", "sentMessages": [{"id": "4612309"}]},
        headers={"x-line-accepted-request-id": "123e4567-e89b-12d3-a456-426614174000"},
    )
    outcome = send(TestLine.case, answer)
    assert outcome.sent.provider_message_id == "4612309"


def test_the_to_setting_is_ours_and_its_refusal_too() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s-1")})
    outcome = send(TestLine.case, INVALID_TO, message=message, settings={"to": "C1234"})
    assert json.loads(outcome.request.content)["to"] == "C1234"
    assert type(outcome.error) is IntegrationError
    none = send(TestLine.case, SUCCESS, message=message)
    assert type(none.error) is IntegrationError
    assert none.requests == []


def test_messages_from_options_and_a_silent_push() -> None:
    sticker = [{"type": "sticker", "packageId": "446", "stickerId": "1988"}]
    message = MESSAGE.model_copy(update={"options": {"messages": sticker}})
    outcome = send(
        TestLine.case, SUCCESS, message=message, settings={"notification_disabled": True}
    )
    assert json.loads(outcome.request.content) == {
        "to": USER_ID,
        "messages": sticker,
        "notificationDisabled": True,
    }


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (Answer(200, json={"userId": "Ub9952f", "basicId": "@216ru", "displayName": "Shop"}), True),
        (Answer(401, json={"message": "Authentication failed."}), False),
    ],
)
def test_check_reads_the_bot_info(answer: Answer, ok: bool) -> None:
    result, request = check(TestLine.case, answer, url="https://api.line.me/v2/bot/info")
    assert result.ok is ok
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
