import json

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.google_chat import GoogleChatProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, send

KEY = "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI"
TOKEN = "SECRET-gchat-token_0123456789abcdefghijklmn"
HOOK = f"https://chat.googleapis.com/v1/spaces/AAAAbcdEfGh/messages?key={KEY}&token={TOKEN}"
URL = f"{HOOK}&requestId=dlv-d-1"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1"),
    title="Order shipped",
    body="Order 1042 left the warehouse.",
)


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert request.url.path == "/v1/spaces/AAAAbcdEfGh/messages"
    # The webhook's own key and token stay; the delivery's key de-duplicates retries.
    assert dict(request.url.params) == {"key": KEY, "token": TOKEN, "requestId": "dlv-d-1"}
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "text": "*Order shipped*\nOrder 1042 left the warehouse."
    }


def google_error(code: int, status: str, text: str) -> Answer:
    return Answer(code, json={"error": {"code": code, "message": text, "status": status}})


class TestGoogleChat(ProviderContract):
    case = ProviderCase(
        provider=GoogleChatProvider,
        idempotency_key=lambda request: request.url.params["requestId"],
        credentials={"webhook_url": HOOK},
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            200,
            json={
                "name": "spaces/AAAAbcdEfGh/messages/kBmvDJmwLoc.kBmvDJmwLoc",
                "sender": {"name": "users/114022495153014004089", "type": "BOT"},
                "text": "*Order shipped*\nOrder 1042 left the warehouse.",
                "thread": {"name": "spaces/AAAAbcdEfGh/threads/kBmvDJmwLoc"},
                "space": {"name": "spaces/AAAAbcdEfGh"},
                "createTime": "2026-11-27T10:00:00.000000Z",
            },
        ),
        expected_message_id="spaces/AAAAbcdEfGh/messages/kBmvDJmwLoc.kBmvDJmwLoc",
        check_request=check_request,
        bad_credentials=google_error(
            401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
        ),
        # The webhook fixes the space; a subscriber's own webhook is tested below.
        invalid_recipient=None,
        required_credential="webhook_url",
        rate_limited=Answer(
            429,
            json={
                "error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}
            },
            headers={"Retry-After": "7"},
        ),
        derived_secrets=(TOKEN,),
    )


def test_invalid_argument_is_an_integration_error() -> None:
    outcome = send(TestGoogleChat.case, google_error(400, "INVALID_ARGUMENT", "Invalid JSON"))
    assert type(outcome.error) is IntegrationError
    assert outcome.error.provider_code == "INVALID_ARGUMENT"


def test_deleted_subscriber_webhook_is_a_recipient_error() -> None:
    theirs = "https://chat.googleapis.com/v1/spaces/ZZZZ/messages?key=k&token=SECRETtheirtoken0123"
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=theirs)})
    outcome = send(
        TestGoogleChat.case,
        google_error(404, "NOT_FOUND", "Requested entity was not found."),
        message=message,
        url=f"{theirs}&requestId=dlv-d-1",
    )
    assert type(outcome.error) is RecipientError
    assert "SECRETtheir" not in str(outcome.error)


def test_rate_limit_without_retry_after_is_still_retried() -> None:
    outcome = send(TestGoogleChat.case, google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"))
    assert isinstance(outcome.error, RetryableError)
    assert outcome.error.retry_after is None


def test_thread_key_replies_or_starts_the_thread() -> None:
    cards = [{"cardId": "c", "card": {"header": {"title": "Order"}}}]
    message = MESSAGE.model_copy(update={"options": {"thread_key": "order-1042", "cardsV2": cards}})
    outcome = send(
        TestGoogleChat.case,
        Answer(200, json={"name": "spaces/AAAAbcdEfGh/messages/x"}),
        message=message,
        url=f"{URL}&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD",
    )
    body = json.loads(outcome.request.content)
    assert body["thread"] == {"threadKey": "order-1042"}
    assert body["cardsV2"] == cards


@pytest.mark.parametrize(
    "url",
    [
        "https://chat.googleapis.com/v1/spaces/AAAA/members?key=k&token=t",
        "https://chat.googleapis.com.evil.example/v1/spaces/AAAA/messages",
        "https://www.googleapis.com/upload/drive/v3/files",
    ],
)
def test_subscriber_url_must_be_a_chat_webhook(url: str) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=url)})
    outcome = send(TestGoogleChat.case, Answer(200, json={}), message=message)
    assert type(outcome.error) is RecipientError
    assert outcome.requests == []


def test_configured_url_is_validated_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        GoogleChatProvider.parse_credentials(
            {"webhook_url": f"http://chat.googleapis.com/v1/spaces/A/messages?token={TOKEN}"}
        )
    assert TOKEN not in str(caught.value)
