"""ntfy, against its documentation (docs.ntfy.sh, v2.11, 2025): "Publishing" (publish as JSON:
https://docs.ntfy.sh/publish/#publish-as-json, its fields and the message answer with ``id``;
authentication by access token or basic auth) and the server's error codes (``{"code",
"http", "error", "link"}``: 40101, 40301, 40009/40010, 42901), "Account" (``GET /v1/account``)
and ``GET /v1/health``."""

import base64
import dataclasses
import json

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.ntfy import NtfyProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

SERVER = "https://ntfy.sh"
URL = f"{SERVER}/"
TOPIC = "SECRETtopic-ada-8f3a1c"
CREDENTIALS = {"username": "alerts", "password": "SECRETntfypassword01"}

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.PUSH,
    to=Recipient(subscriber_id="s-1", device_tokens=(TOPIC,)),
    title="Backup failed",
    body="nightly backup of **db-1** failed",
    options={"tags": ["warning", "floppy_disk"], "click": "https://status.example/db-1"},
)


def ntfy_error(status: int, code: int, text: str) -> Answer:
    return Answer(
        status,
        json={"code": code, "http": status, "error": text, "link": "https://ntfy.sh/docs/publish/"},
    )


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    basic = base64.b64encode(b"alerts:SECRETntfypassword01").decode()
    assert request.headers["authorization"] == f"Basic {basic}"
    assert json.loads(request.content) == {
        "topic": TOPIC,
        "message": "nightly backup of **db-1** failed",
        "title": "Backup failed",
        "priority": 4,
        "markdown": True,
        "tags": ["warning", "floppy_disk"],
        "click": "https://status.example/db-1",
    }


FORBIDDEN = ntfy_error(403, 40301, "forbidden")


class TestNtfy(ProviderContract):
    case = ProviderCase(
        provider=NtfyProvider,
        credentials=CREDENTIALS,
        settings={"priority": 4, "markdown": True},
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            200,
            json={
                "id": "sPs71M8A2T",
                "time": 1673542291,
                "expires": 1673585491,
                "event": "message",
                "topic": TOPIC,
                "title": "Backup failed",
                "message": "nightly backup of **db-1** failed",
            },
        ),
        expected_message_id="sPs71M8A2T",
        check_request=check_request,
        bad_credentials=ntfy_error(401, 40101, "unauthorized"),
        invalid_recipient=FORBIDDEN,
        required_credential="password",
        derived_secrets=(TOPIC,),
        rate_limited=Answer(
            429,
            json={"code": 42901, "http": 429, "error": "limit reached: too many requests"},
            headers={"Retry-After": "7"},
        ),
        refusals=(
            Refusal(FORBIDDEN, RecipientError, "40301"),
            Refusal(
                ntfy_error(400, 40009, "invalid request: topic invalid"), RecipientError, "40009"
            ),
            Refusal(
                ntfy_error(400, 40010, "invalid request: topic name is not allowed"),
                RecipientError,
                "40010",
            ),
            Refusal(
                ntfy_error(400, 40007, "invalid priority parameter"), IntegrationError, "40007"
            ),
            Refusal(
                ntfy_error(429, 42908, "limit reached: daily message quota reached"),
                RetryableError,
                "42908",
            ),
        ),
    )


def test_an_access_token_is_a_bearer_and_no_credentials_send_none() -> None:
    token = "tk_SECRETAxqx9ZyD0Ig7cFqBiZ4"
    outcome = send(TestNtfy.case, TestNtfy.case.success, credentials={"access_token": token})
    assert outcome.request.headers["authorization"] == f"Bearer {token}"
    anonymous = send(TestNtfy.case, TestNtfy.case.success, credentials={})
    assert "authorization" not in anonymous.request.headers


@pytest.mark.parametrize(
    "raw",
    [
        {"username": "alerts"},
        {"access_token": "tk_x", "username": "alerts", "password": "SECRETpw"},
    ],
)
def test_credentials_are_one_way_or_none(raw: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        NtfyProvider.parse_credentials(raw)
    assert "SECRETpw" not in str(caught.value)


def test_one_message_per_topic_and_a_forbidden_topic_fails_alone() -> None:
    other = "ada-laptop"
    message = MESSAGE.model_copy(update={"to": Recipient(device_tokens=(TOPIC, other))})

    def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["topic"] == other:
            return FORBIDDEN.response()
        return TestNtfy.case.success.response()

    outcome = send(TestNtfy.case, answer, message=message)
    assert len(outcome.requests) == 2
    assert outcome.sent.provider_message_id == "sPs71M8A2T"


def test_a_self_hosted_server() -> None:
    outcome = send(
        TestNtfy.case,
        TestNtfy.case.success,
        settings={"base_url": "https://ntfy.example.com/"},
        url="https://ntfy.example.com/",
    )
    assert outcome.result is not None
    with pytest.raises(ValidationError):
        NtfyProvider.parse_settings({"base_url": "http://ntfy.example.com"})


def test_the_options_priority_wins_and_a_body_only_message_has_no_title() -> None:
    message = MESSAGE.model_copy(update={"title": None, "options": {"priority": 5}})
    body = json.loads(send(TestNtfy.case, TestNtfy.case.success, message=message).request.content)
    assert body["priority"] == 5
    assert "title" not in body


@pytest.mark.parametrize(
    ("credentials", "url", "answer", "ok"),
    [
        (CREDENTIALS, f"{SERVER}/v1/account", Answer(200, json={"username": "alerts"}), True),
        (CREDENTIALS, f"{SERVER}/v1/account", ntfy_error(401, 40101, "unauthorized"), False),
        ({}, f"{SERVER}/v1/health", Answer(200, json={"healthy": True}), True),
    ],
)
def test_check(credentials: dict[str, str], url: str, answer: Answer, ok: bool) -> None:
    with_credentials = dataclasses.replace(TestNtfy.case, credentials=credentials)
    result, _ = check(with_credentials, answer, url=url)
    assert result.ok is ok
    assert "SECRET" not in result.detail
