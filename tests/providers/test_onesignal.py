import json
import uuid
from typing import Any

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient, SendResult
from providers.errors import IntegrationError, RecipientError
from providers.onesignal import OneSignalProvider
from tests.providers.harness import (
    Answer,
    ProviderCase,
    ProviderContract,
    check,
    delivered,
    send,
)

URL = "https://api.onesignal.com/notifications"
APP_ID = "5eb5a37e-b458-11e3-ac11-000c2940e62c"
CREDENTIALS = {"app_id": APP_ID, "api_key": "SECRET-onesignal-app-api-key"}
SUBSCRIPTION_ID = "1dd608f2-c6a1-11e3-851d-000c2940e62c"
NOTIFICATION_ID = "b98881cc-1e94-4366-bbd9-db8f3429292b"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.PUSH,
    to=Recipient(subscriber_id="user-42", device_tokens=(SUBSCRIPTION_ID,)),
    title="Order shipped",
    body="Your order is on its way",
    data={"order": 42},
)


def idempotency_key(request: httpx.Request) -> uuid.UUID:
    return uuid.UUID(json.loads(request.content)["idempotency_key"])


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == "Key SECRET-onesignal-app-api-key"
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    key = body.pop("idempotency_key")
    assert body == {
        "app_id": APP_ID,
        "target_channel": "push",
        "include_subscription_ids": [SUBSCRIPTION_ID],
        "contents": {"en": "Your order is on its way"},
        "headings": {"en": "Order shipped"},
        "data": {"order": 42},
    }
    # OneSignal takes v3 or v4 UUIDs only.
    assert uuid.UUID(key).version == 3


class TestOneSignal(ProviderContract):
    case = ProviderCase(
        provider=OneSignalProvider,
        idempotency_key=lambda request: str(idempotency_key(request)),
        credentials=CREDENTIALS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, json={"id": NOTIFICATION_ID, "external_id": None}),
        expected_message_id=NOTIFICATION_ID,
        check_request=check_request,
        bad_credentials=Answer(
            403,
            json={
                "errors": [
                    "Access denied.  Please include an 'Authorization: ...' header with a "
                    "valid API key."
                ]
            },
        ),
        invalid_recipient=Answer(
            200, json={"id": "", "errors": {"invalid_player_ids": [SUBSCRIPTION_ID]}}
        ),
        required_credential="api_key",
        rate_limited=Answer(
            429, json={"errors": ["API rate limit exceeded."]}, headers={"Retry-After": "7"}
        ),
    )


def _created() -> httpx.Response:
    return httpx.Response(200, json={"id": NOTIFICATION_ID})


def test_without_subscription_ids_targets_the_subscriber_external_id() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="user-42")})
    attempt = send(TestOneSignal.case, [_created()], message=message)
    assert isinstance(attempt.value, SendResult)
    body = json.loads(attempt.requests[0].content)
    assert body["include_aliases"] == {"external_id": ["user-42"]}
    assert "include_subscription_ids" not in body
    assert body["target_channel"] == "push"


def test_recipient_without_any_target_fails_before_sending() -> None:
    attempt = send(
        TestOneSignal.case, [], message=MESSAGE.model_copy(update={"to": Recipient(email="a@b.c")})
    )
    assert type(attempt.value) is RecipientError
    assert len(attempt.requests) == 0


def test_idempotency_key_is_stable_per_delivery() -> None:
    other = MESSAGE.model_copy(update={"delivery_id": "d-2"})
    _, request = delivered(TestOneSignal.case, [_created()])
    _, again = delivered(TestOneSignal.case, [_created()])
    _, different = delivered(TestOneSignal.case, [_created()], message=other)
    first = idempotency_key(request)
    assert first == idempotency_key(again)
    assert first != idempotency_key(different)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"id": "", "errors": {"invalid_player_ids": [SUBSCRIPTION_ID]}}, "invalid_player_ids"),
        (
            {"id": "", "errors": {"invalid_aliases": {"external_id": ["user-42"]}}},
            "invalid_aliases",
        ),
        ({"id": "", "errors": ["All included players are not subscribed"]}, "not_subscribed"),
        ({"errors": ["All included players are not subscribed"]}, "not_subscribed"),
    ],
)
def test_unknown_or_unsubscribed_targets_are_recipient_errors(
    body: dict[str, Any], code: str
) -> None:
    outcome = send(TestOneSignal.case, [httpx.Response(200, json=body)]).value
    assert type(outcome) is RecipientError
    assert outcome.provider_code == code


def test_some_invalid_targets_with_a_notification_id_is_a_success() -> None:
    answer = httpx.Response(
        200,
        json={"id": NOTIFICATION_ID, "errors": {"invalid_player_ids": ["stale-subscription"]}},
    )
    outcome = send(TestOneSignal.case, [answer]).value
    assert outcome == SendResult(provider_message_id=NOTIFICATION_ID, status_code=200)


def test_no_notification_without_recipient_reason_is_an_integration_error() -> None:
    answer = httpx.Response(200, json={"id": "", "errors": ["Something unexpected"]})
    outcome = send(TestOneSignal.case, [answer]).value
    assert type(outcome) is IntegrationError
    assert "Something unexpected" in str(outcome)


def test_bad_request_is_an_integration_error_with_its_text() -> None:
    answer = httpx.Response(
        400, json={"errors": ["Message Notifications must have English language content"]}
    )
    outcome = send(TestOneSignal.case, [answer]).value
    assert type(outcome) is IntegrationError
    assert outcome.status_code == 400
    assert "English language content" in str(outcome)


def test_options_cannot_change_app_target_or_idempotency_key() -> None:
    message = MESSAGE.model_copy(
        update={
            "options": {
                "onesignal": {
                    "app_id": "other-app",
                    "included_segments": ["Total Subscriptions"],
                    "idempotency_key": "fixed",
                    "ios_badgeType": "Increase",
                    "ios_badgeCount": 1,
                }
            }
        }
    )
    _, request = delivered(TestOneSignal.case, [_created()], message=message)
    body = json.loads(request.content)
    assert body["app_id"] == APP_ID
    assert "included_segments" not in body
    assert body["idempotency_key"] != "fixed"
    assert body["ios_badgeType"] == "Increase"
    assert body["ios_badgeCount"] == 1


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (httpx.Response(200, json={"total_count": 0, "offset": 0, "limit": 1}), True),
        (httpx.Response(403, json={"errors": ["Access denied."]}), False),
    ],
)
def test_check_lists_one_message_of_the_app(answer: httpx.Response, ok: bool) -> None:
    result, request = check(TestOneSignal.case, answer, url=URL)
    assert result.ok is ok
    assert request.url.params["app_id"] == APP_ID
    assert request.url.params["limit"] == "1"
    assert request.headers["authorization"] == "Key SECRET-onesignal-app-api-key"
    assert "SECRET" not in result.detail
