import json

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.mattermost import MattermostProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, send

KEY = "SECRETxgenkey0123456789ab"
URL = f"https://chat.example.com/hooks/{KEY}"
THEIR_URL = "https://chat.example.com/hooks/SECRETtheirkey0123456789"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1", chat_id="@alice"),
    title="Password changed",
    body="If this was not you, reply **now**.",
)


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "text": "**Password changed**\nIf this was not you, reply **now**.",
        "channel": "@alice",
        "username": "security-bot",
    }


def app_error(status: int, error_id: str, text: str) -> Answer:
    return Answer(
        status,
        json={
            "id": error_id,
            "message": text,
            "detailed_error": "",
            "request_id": "hoan6o9ws7rp5xj7wu9rmysrte",
            "status_code": status,
        },
    )


CHANNEL_NOT_FOUND = app_error(
    404, "web.incoming_webhook.channel.app_error", "Couldn't find the channel."
)
INVALID_WEBHOOK = app_error(400, "web.incoming_webhook.invalid.app_error", "Invalid webhook.")


class TestMattermost(ProviderContract):
    case = ProviderCase(
        provider=MattermostProvider,
        credentials={"webhook_url": URL},
        settings={"username": "security-bot", "channel": "town-square"},
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, text="ok"),
        expected_message_id=None,
        check_request=check_request,
        bad_credentials=INVALID_WEBHOOK,
        invalid_recipient=CHANNEL_NOT_FOUND,
        required_credential="webhook_url",
        derived_secrets=(KEY,),
    )


def test_channel_setting_is_used_without_a_chat_id_and_its_errors_are_ours() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s-1")})
    outcome = send(TestMattermost.case, CHANNEL_NOT_FOUND, message=message)
    assert json.loads(outcome.request.content)["channel"] == "town-square"
    assert type(outcome.error) is IntegrationError
    assert "channel setting" in outcome.error.reason


def test_without_any_channel_the_webhooks_own_channel_is_used() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s-1")})
    outcome = send(TestMattermost.case, Answer(200, text="ok"), message=message, settings={})
    assert "channel" not in json.loads(outcome.request.content)
    # The webhook's own channel was deleted: the integration must be fixed.
    gone = send(TestMattermost.case, CHANNEL_NOT_FOUND, message=message, settings={})
    assert type(gone.error) is IntegrationError


def test_locked_webhook_refusing_a_subscribers_channel_is_a_recipient_error() -> None:
    answer = app_error(403, "web.incoming_webhook.channel_locked.app_error", "locked")
    outcome = send(TestMattermost.case, answer)
    assert type(outcome.error) is RecipientError


def test_disabled_webhooks_are_not_retried() -> None:
    answer = app_error(501, "web.incoming_webhook.disabled.app_error", "Incoming webhooks disabled")
    outcome = send(TestMattermost.case, answer)
    assert type(outcome.error) is IntegrationError


def test_subscriber_webhook_on_the_same_server_is_used() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=THEIR_URL)})
    outcome = send(TestMattermost.case, Answer(200, text="ok"), message=message, url=THEIR_URL)
    assert outcome.result is not None
    deleted = send(TestMattermost.case, INVALID_WEBHOOK, message=message, url=THEIR_URL)
    assert type(deleted.error) is RecipientError


def test_subscriber_webhook_on_another_server_needs_allowed_hosts() -> None:
    other = "https://mm.other.example/hooks/abcdefghijklmnopqrstuvwxyz"
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=other)})
    refused = send(TestMattermost.case, Answer(200, text="ok"), message=message)
    assert type(refused.error) is RecipientError
    assert refused.requests == []
    allowed = send(
        TestMattermost.case,
        Answer(200, text="ok"),
        message=message,
        settings={"allowed_webhook_hosts": ["other.example"]},
        url=other,
    )
    assert allowed.result is not None


def test_server_under_a_subpath_is_accepted() -> None:
    url = "https://example.com/mattermost/hooks/abcdefghijklmnopqrstuvwxyz"
    outcome = send(
        TestMattermost.case, Answer(200, text="ok"), credentials={"webhook_url": url}, url=url
    )
    assert outcome.result is not None


def test_unparsable_payload_is_an_integration_error() -> None:
    answer = app_error(400, "web.incoming_webhook.parse.app_error", "Unable to parse incoming data")
    outcome = send(TestMattermost.case, answer)
    assert type(outcome.error) is IntegrationError


def test_rate_limit_is_retried() -> None:
    outcome = send(
        TestMattermost.case, Answer(429, text="limit exceeded", headers={"Retry-After": "2"})
    )
    assert isinstance(outcome.error, RetryableError)
    assert outcome.error.retry_after == 2.0


@pytest.mark.parametrize(
    "url", ["http://chat.example.com/hooks/abc", "https://chat.example.com/api/v4/posts"]
)
def test_configured_url_must_be_an_https_hook(url: str) -> None:
    with pytest.raises(ValidationError):
        MattermostProvider.parse_credentials({"webhook_url": url})
