"""Gotify, against its documentation (gotify.net, server 2.6, 2025): the REST API reference
(https://gotify.net/api-docs: ``POST /message``, the ``X-Gotify-Key`` header, the message model
answered, the ``{"error", "errorCode", "errorDescription"}`` error model), "Push messages"
(https://gotify.net/docs/pushmsg: the ``/message?token=`` form) and "Message Extras"
(https://gotify.net/docs/msgextras)."""

import json

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError
from providers.gotify import GotifyProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, send

SERVER = "https://push.example.com"
URL = f"{SERVER}/message"
TOKEN = "SECRETAvKcy9o-yvVhyKd"
CREDENTIALS = {"app_token": TOKEN}
SETTINGS = {"base_url": SERVER, "priority": 5}
THEIRS = f"{SERVER}/message?token=SECRETtheirTokn1"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1"),
    title="Backup failed",
    body="nightly backup of **db-1** failed",
    options={"markdown": True, "click": "https://status.example/db-1"},
)


def gotify_error(status: int, error: str, description: str) -> Answer:
    return Answer(
        status, json={"error": error, "errorCode": status, "errorDescription": description}
    )


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["x-gotify-key"] == TOKEN
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "message": "nightly backup of **db-1** failed",
        "title": "Backup failed",
        "priority": 5,
        "extras": {
            "client::display": {"contentType": "text/markdown"},
            "client::notification": {"click": {"url": "https://status.example/db-1"}},
        },
    }


UNAUTHORIZED = gotify_error(
    401,
    "Unauthorized",
    "you need to provide a valid access token or user credentials to access this api",
)


class TestGotify(ProviderContract):
    case = ProviderCase(
        provider=GotifyProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            200,
            json={
                "id": 25,
                "appid": 5,
                "message": "nightly backup of **db-1** failed",
                "title": "Backup failed",
                "priority": 5,
                "date": "2018-02-27T19:36:10.5045044+01:00",
            },
        ),
        expected_message_id="25",
        check_request=check_request,
        bad_credentials=UNAUTHORIZED,
        # The application fixes the destination; a subscriber's own URL is tested below.
        invalid_recipient=None,
        required_credential="app_token",
        refusals=(
            Refusal(UNAUTHORIZED, IntegrationError, "401"),
            Refusal(
                gotify_error(400, "Bad Request", "Field 'message' is required"),
                IntegrationError,
                "400",
            ),
        ),
    )


def test_a_subscribers_own_message_url_is_used_and_its_refusal_is_theirs() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=THEIRS)})
    outcome = send(TestGotify.case, TestGotify.case.success, message=message, url=THEIRS)
    assert "x-gotify-key" not in outcome.request.headers
    assert outcome.sent.provider_message_id == "25"
    refused = send(TestGotify.case, UNAUTHORIZED, message=message, url=THEIRS)
    assert type(refused.error) is RecipientError
    assert "SECRETtheirTokn1" not in str(refused.error)


@pytest.mark.parametrize(
    "theirs",
    [
        "https://evil.example/message?token=abc",
        f"{SERVER}/application?token=abc",
        f"{SERVER}/message",
        "http://push.example.com/message?token=abc",
    ],
)
def test_a_subscriber_url_off_the_server_or_without_a_token_is_refused_unsent(
    theirs: str,
) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=theirs)})
    outcome = send(TestGotify.case, TestGotify.case.success, message=message)
    assert type(outcome.error) is RecipientError
    assert outcome.requests == []


def test_another_server_for_subscribers_needs_allowed_hosts() -> None:
    theirs = "https://gotify.ada.example/message?token=abc"
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=theirs)})
    settings = {**SETTINGS, "allowed_webhook_hosts": ["ada.example"]}
    outcome = send(
        TestGotify.case, TestGotify.case.success, message=message, settings=settings, url=theirs
    )
    assert outcome.result is not None


def test_a_plain_message_without_extras_and_a_server_under_a_path() -> None:
    message = MESSAGE.model_copy(update={"title": None, "options": {}})
    outcome = send(
        TestGotify.case,
        TestGotify.case.success,
        message=message,
        settings={"base_url": "https://example.com/gotify/"},
        url="https://example.com/gotify/message",
    )
    assert json.loads(outcome.request.content) == {"message": "nightly backup of **db-1** failed"}


def test_the_server_must_be_https() -> None:
    with pytest.raises(ValidationError) as caught:
        GotifyProvider.parse_settings({"base_url": "http://push.example.com"})
    assert "base_url" in str(caught.value)
