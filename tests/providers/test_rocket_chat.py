"""Rocket.Chat, against its developer documentation (REST API, 2025): "Post Message"
(https://developer.rocket.chat/apidocs/post-message: the headers, the ``channel``/``roomId``
body, the ``message._id`` answer), "Send your first message in 5 minutes", "HTTP Response
Codes" (https://developer.rocket.chat/apidocs/http-response-codes: 401, 403, 429) and "Get
Profile Information" (``GET /api/v1/me``)."""

import json

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.rocket_chat import RocketChatProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

SERVER = "https://chat.example.com"
URL = f"{SERVER}/api/v1/chat.postMessage"
TOKEN = "SECRETrocketchatpersonaltoken0123456789"
CREDENTIALS = {"user_id": "y65tAmHs93aDChMWu", "auth_token": TOKEN}
SETTINGS = {"base_url": SERVER, "channel": "#alerts", "alias": "Dispatcher"}

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1", chat_id="@graywolf336"),
    title="Deploy finished",
    body="api v2.3 is live",
)

SUCCESS = Answer(
    200,
    json={
        "ts": 1481748965123,
        "channel": "graywolf336",
        "message": {
            "alias": "Dispatcher",
            "msg": "*Deploy finished*\napi v2.3 is live",
            "parseUrls": True,
            "groupable": False,
            "ts": "2016-12-14T20:56:05.117Z",
            "u": {"_id": "y65tAmHs93aDChMWu", "username": "alerts-bot"},
            "rid": "GENERAL",
            "_updatedAt": "2016-12-14T20:56:05.119Z",
            "_id": "jC9chsFddTvsbFQG7",
        },
        "success": True,
    },
)
INVALID_CHANNEL = Answer(
    400, json={"success": False, "error": "invalid-channel", "errorType": "error-invalid-channel"}
)


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["x-auth-token"] == TOKEN
    assert request.headers["x-user-id"] == "y65tAmHs93aDChMWu"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "channel": "@graywolf336",
        "text": "*Deploy finished*\napi v2.3 is live",
        "alias": "Dispatcher",
    }


class TestRocketChat(ProviderContract):
    case = ProviderCase(
        provider=RocketChatProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=SUCCESS,
        expected_message_id="jC9chsFddTvsbFQG7",
        check_request=check_request,
        bad_credentials=Answer(
            401, json={"status": "error", "message": "You must be logged in to do this."}
        ),
        invalid_recipient=INVALID_CHANNEL,
        required_credential="auth_token",
        refusals=(
            Refusal(INVALID_CHANNEL, RecipientError, "error-invalid-channel"),
            Refusal(
                Answer(
                    400,
                    json={
                        "success": False,
                        "error": "Message size exceeds the allowed size [error-message-size-exceeded]",
                        "errorType": "error-message-size-exceeded",
                    },
                ),
                RecipientError,
                "error-message-size-exceeded",
            ),
            Refusal(
                Answer(
                    403,
                    json={
                        "success": False,
                        "error": "User does not have the permissions required for this action "
                        "[error-unauthorized]",
                    },
                ),
                IntegrationError,
                "error-unauthorized",
            ),
        ),
    )


def test_the_wait_named_in_a_rate_limited_answer() -> None:
    answer = Answer(
        429,
        json={
            "success": False,
            "error": "Error, too many requests. Please slow down. You must wait 12 seconds "
            "before trying this endpoint again. [error-too-many-requests]",
        },
    )
    outcome = send(TestRocketChat.case, answer)
    assert isinstance(outcome.error, RetryableError)
    assert outcome.error.retry_after == 12.0
    assert outcome.error.provider_code == "error-too-many-requests"


def test_the_channel_setting_is_ours_and_a_room_id_is_sent_as_room_id() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s-1")})
    outcome = send(TestRocketChat.case, INVALID_CHANNEL, message=message)
    assert json.loads(outcome.request.content)["channel"] == "#alerts"
    assert type(outcome.error) is IntegrationError
    assert "channel setting" in outcome.error.reason

    room = MESSAGE.model_copy(update={"to": Recipient(chat_id="GENERAL")})
    body = json.loads(send(TestRocketChat.case, SUCCESS, message=room).request.content)
    assert body["roomId"] == "GENERAL"
    assert "channel" not in body


def test_a_success_false_inside_a_200_is_not_success() -> None:
    outcome = send(TestRocketChat.case, Answer(200, json={"success": False, "error": "odd"}))
    assert type(outcome.error) is IntegrationError


def test_options_pass_through() -> None:
    attachments = [{"title": "Build", "title_link": "https://ci.example/1"}]
    message = MESSAGE.model_copy(update={"options": {"attachments": attachments, "emoji": ":x:"}})
    body = json.loads(send(TestRocketChat.case, SUCCESS, message=message).request.content)
    assert body["attachments"] == attachments
    assert body["emoji"] == ":x:"


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (Answer(200, json={"_id": "y65t", "username": "alerts-bot", "success": True}), True),
        (
            Answer(401, json={"status": "error", "message": "You must be logged in to do this."}),
            False,
        ),
    ],
)
def test_check_reads_the_users_profile(answer: Answer, ok: bool) -> None:
    result, request = check(TestRocketChat.case, answer, url=f"{SERVER}/api/v1/me")
    assert result.ok is ok
    assert request.headers["x-auth-token"] == TOKEN
    assert TOKEN not in result.detail
