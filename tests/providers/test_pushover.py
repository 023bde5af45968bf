"""Pushover, against its Message API documentation (https://pushover.net/api, as published in
2025: the form parameters, ``{"status": 1, "request"}``, ``status: 0`` with ``errors`` and the
invalid parameter named, 429 over the monthly limit, 5xx to retry, the 1,024/250 character
limits, two concurrent requests) and ``GET /1/sounds.json``."""

from urllib.parse import parse_qs

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError
from providers.pushover import PushoverProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

URL = "https://api.pushover.net/1/messages.json"
TOKEN = "SECRETazGDORePK8gMaC0QOYAMyEEuzJnyUi"
USER = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
CREDENTIALS = {"app_token": TOKEN}
REQUEST_ID = "5042853c-402d-4a18-abcb-168734a801de"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.PUSH,
    to=Recipient(subscriber_id="s-1", device_tokens=(USER,)),
    title="Backup failed",
    body="nightly backup of db-1 failed at 02:00",
    options={"priority": 1, "sound": "siren", "url": "https://status.example/db-1"},
)


def fields(request: httpx.Request) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(request.content.decode()).items()}


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert fields(request) == {
        "token": TOKEN,
        "user": USER,
        "message": "nightly backup of db-1 failed at 02:00",
        "title": "Backup failed",
        "priority": "1",
        "sound": "siren",
        "url": "https://status.example/db-1",
    }


def refused(status: int, parameter: str, error: str) -> Answer:
    return Answer(
        status, json={parameter: "invalid", "errors": [error], "status": 0, "request": REQUEST_ID}
    )


INVALID_USER = refused(400, "user", "user identifier is invalid")


class TestPushover(ProviderContract):
    case = ProviderCase(
        provider=PushoverProvider,
        credentials=CREDENTIALS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, json={"status": 1, "request": REQUEST_ID}),
        expected_message_id=REQUEST_ID,
        check_request=check_request,
        bad_credentials=refused(400, "token", "application token is invalid"),
        invalid_recipient=INVALID_USER,
        required_credential="app_token",
        rate_limited=Answer(
            429,
            json={"status": 0, "errors": ["application is over its monthly message limit"]},
            headers={"Retry-After": "7"},
        ),
        refusals=(
            Refusal(INVALID_USER, RecipientError, "user"),
            Refusal(
                refused(400, "device", "device name is not valid for user"),
                RecipientError,
                "device",
            ),
            Refusal(
                refused(400, "message", "message cannot be longer than 1024 characters"),
                IntegrationError,
                "message",
            ),
        ),
    )


def test_one_request_per_user_key_and_one_bad_key_does_not_fail_the_rest() -> None:
    other = "gznej3rKEVAvPUxu9vvNnqpmZpokzF"
    message = MESSAGE.model_copy(update={"to": Recipient(device_tokens=(USER, other))})

    def answer(request: httpx.Request) -> httpx.Response:
        if fields(request)["user"] == other:
            return INVALID_USER.response()
        return TestPushover.case.success.response()

    outcome = send(TestPushover.case, answer, message=message)
    assert sorted(fields(request)["user"] for request in outcome.requests) == sorted((USER, other))
    assert outcome.sent.provider_message_id == REQUEST_ID


def test_every_key_invalid_is_a_recipient_error() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(device_tokens=(USER, USER + "x"))})
    outcome = send(TestPushover.case, INVALID_USER, message=message)
    assert type(outcome.error) is RecipientError


def test_no_user_key_is_a_recipient_error_before_any_request() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s-1")})
    outcome = send(TestPushover.case, TestPushover.case.success, message=message)
    assert type(outcome.error) is RecipientError
    assert outcome.requests == []


def test_a_body_only_message_and_a_long_title() -> None:
    message = MESSAGE.model_copy(update={"title": None, "options": {"html": True}})
    sent = fields(send(TestPushover.case, TestPushover.case.success, message=message).request)
    assert "title" not in sent
    assert sent["html"] == "1"
    long = MESSAGE.model_copy(update={"title": "t" * 300, "options": {}})
    sent = fields(send(TestPushover.case, TestPushover.case.success, message=long).request)
    assert sent["title"] == "t" * 250


def test_status_0_inside_a_200_is_not_success() -> None:
    outcome = send(TestPushover.case, Answer(200, json={"status": 0, "errors": ["odd"]}))
    assert type(outcome.error) is IntegrationError


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (Answer(200, json={"sounds": {"pushover": "Pushover (default)"}, "status": 1}), True),
        (refused(400, "token", "application token is invalid"), False),
    ],
)
def test_check_lists_the_sounds(answer: Answer, ok: bool) -> None:
    result, _ = check(
        TestPushover.case, answer, url=f"https://api.pushover.net/1/sounds.json?token={TOKEN}"
    )
    assert result.ok is ok
    assert TOKEN not in result.detail
