import json

import httpx
import pytest
from pydantic import ValidationError

from providers.base import Attachment, ChannelType, Message, Recipient
from providers.discord import DiscordProvider
from providers.errors import IntegrationError, RecipientError, RetryableError
from tests.providers.harness import Answer, ProviderCase, ProviderContract, form_parts, send

TOKEN = "SECRET-discord-webhook-token_0123456789abcdefABCDEF"
#: Webhook URLs as Discord hands them out, without an API version...
HOOK = f"https://discord.com/api/webhooks/1234567890123456789/{TOKEN}"
THEIR_TOKEN = "SECRET-their-discord-token_0123456789"
THEIR_HOOK = f"https://discord.com/api/webhooks/987654321098765432/{THEIR_TOKEN}"
#: ...and the versioned URLs they are posted to.
POST_HOOK = f"https://discord.com/api/v10/webhooks/1234567890123456789/{TOKEN}"
THEIR_POST_HOOK = f"https://discord.com/api/v10/webhooks/987654321098765432/{THEIR_TOKEN}"
URL = f"{POST_HOOK}?wait=true"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1"),
    title="Build failed",
    body="main is red @everyone",
)

#: The message object Execute Webhook returns with ``wait=true`` (trimmed).
CREATED = {
    "id": "1185271437296087050",
    "type": 0,
    "content": "**Build failed**\nmain is red @everyone",
    "channel_id": "1185269888570941440",
    "author": {"bot": True, "id": "1234567890123456789", "username": "CI"},
    "webhook_id": "1234567890123456789",
}


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "content": "**Build failed**\nmain is red @everyone",
        # Templates cannot ping @everyone unless a workflow step allows it.
        "allowed_mentions": {"parse": ["users", "roles"]},
        "username": "CI",
    }


class TestDiscord(ProviderContract):
    case = ProviderCase(
        provider=DiscordProvider,
        credentials={"webhook_url": HOOK},
        settings={"username": "CI"},
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, json=CREATED),
        expected_message_id="1185271437296087050",
        check_request=check_request,
        bad_credentials=Answer(401, json={"message": "Invalid Webhook Token", "code": 50027}),
        # The integration's webhook fixes the channel; a subscriber's webhook is tested below.
        invalid_recipient=None,
        required_credential="webhook_url",
        rate_limited=Answer(
            429,
            json={"message": "You are being rate limited.", "retry_after": 7, "global": False},
            headers={"Retry-After": "7"},
        ),
        server_error=Answer(502, text="<html>502 Bad Gateway</html>"),
        derived_secrets=(TOKEN,),
    )


THEIRS = MESSAGE.model_copy(update={"to": Recipient(webhook_url=THEIR_HOOK)})
UNKNOWN_WEBHOOK = Answer(404, json={"message": "Unknown Webhook", "code": 10015})


def test_unknown_webhook_is_the_integrations_problem_for_its_own_url() -> None:
    outcome = send(TestDiscord.case, UNKNOWN_WEBHOOK)
    assert type(outcome.error) is IntegrationError
    assert outcome.error.provider_code == "10015"


def test_unknown_subscriber_webhook_is_a_recipient_error() -> None:
    outcome = send(
        TestDiscord.case, UNKNOWN_WEBHOOK, message=THEIRS, url=f"{THEIR_POST_HOOK}?wait=true"
    )
    assert type(outcome.error) is RecipientError
    assert THEIR_TOKEN not in str(outcome.error)


def test_invalid_form_body_is_an_integration_error() -> None:
    answer = Answer(
        400,
        json={
            "code": 50035,
            "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
            "message": "Invalid Form Body",
        },
    )
    outcome = send(TestDiscord.case, answer, message=THEIRS, url=f"{THEIR_POST_HOOK}?wait=true")
    assert type(outcome.error) is IntegrationError
    assert outcome.error.provider_code == "50035"


def test_body_retry_after_is_more_precise_than_the_header() -> None:
    answer = Answer(
        429,
        json={"message": "You are being rate limited.", "retry_after": 64.57, "global": False},
        headers={"Retry-After": "65"},
    )
    outcome = send(TestDiscord.case, answer)
    assert isinstance(outcome.error, RetryableError)
    assert outcome.error.retry_after == 64.57


def test_thread_id_joins_the_query_and_thread_name_the_body() -> None:
    message = MESSAGE.model_copy(
        update={"options": {"thread_id": "42", "embeds": [{"title": "t"}], "thread_name": "CI"}}
    )
    outcome = send(
        TestDiscord.case,
        Answer(200, json=CREATED),
        message=message,
        url=f"{POST_HOOK}?wait=true&thread_id=42",
    )
    body = json.loads(outcome.request.content)
    assert body["embeds"] == [{"title": "t"}]
    assert body["thread_name"] == "CI"
    assert "thread_id" not in body


def test_subscriber_url_keeps_its_own_query() -> None:
    hook = f"{THEIR_HOOK}?thread_id=7"
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=hook)})
    outcome = send(
        TestDiscord.case,
        Answer(200, json=CREATED),
        message=message,
        url=f"{THEIR_POST_HOOK}?thread_id=7&wait=true",
    )
    assert outcome.result is not None


def test_attachments_go_as_multipart_with_payload_json() -> None:
    message = MESSAGE.model_copy(
        update={
            "attachments": (
                Attachment(filename="log.txt", content_type="text/plain", content=b"trace"),
                Attachment(filename="a.png", content_type="image/png", content=b"\x89PNG"),
            )
        }
    )
    outcome = send(TestDiscord.case, Answer(200, json=CREATED), message=message)
    parts = {part.name: part for part in form_parts(outcome.request)}
    assert list(parts) == ["payload_json", "files[0]", "files[1]"]
    assert (parts["files[0]"].filename, parts["files[0]"].content) == ("log.txt", b"trace")
    assert parts["files[1]"].filename == "a.png"
    payload = json.loads(parts["payload_json"].content)
    # Attachment ids are snowflakes, which the API spells as strings; ``n`` names ``files[n]``.
    assert payload["attachments"] == [
        {"id": "0", "filename": "log.txt"},
        {"id": "1", "filename": "a.png"},
    ]
    assert payload["content"].startswith("**Build failed**")


@pytest.mark.parametrize(
    "url",
    [
        "https://discord.com/api/channels/1/messages",
        "https://evil.example/api/webhooks/1/abc",
        "https://discord.com.evil.example/api/webhooks/1/abc",
    ],
)
def test_subscriber_url_must_be_a_discord_webhook(url: str) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=url)})
    outcome = send(TestDiscord.case, Answer(200, json=CREATED), message=message)
    assert type(outcome.error) is RecipientError
    assert outcome.requests == []


def test_configured_url_is_validated_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        DiscordProvider.parse_credentials({"webhook_url": "https://discord.com/SECRET-nothook"})
    assert "SECRET" not in str(caught.value)
    assert "webhook path" in str(caught.value)


@pytest.mark.parametrize(
    ("hook", "posted"),
    [
        (HOOK, URL),
        (
            "https://canary.discord.com/api/v9/webhooks/1234567890123456789/tok?thread_id=7",
            "https://canary.discord.com/api/v10/webhooks/1234567890123456789/tok?thread_id=7&wait=true",
        ),
        (POST_HOOK, URL),
    ],
    ids=["unversioned", "other-version", "v10"],
)
def test_posts_go_to_the_v10_api_whatever_the_webhook_url_says(hook: str, posted: str) -> None:
    # An unversioned webhook URL gets Discord's default API version, not the v10 whose body
    # this provider builds.
    outcome = send(
        TestDiscord.case,
        Answer(200, json=CREATED),
        credentials={"webhook_url": hook},
        url=posted,
    )
    assert str(outcome.request.url) == posted


def test_canary_and_versioned_webhook_urls_are_accepted() -> None:
    for url in (
        "https://canary.discord.com/api/webhooks/1/tok",
        "https://discordapp.com/api/v10/webhooks/1/tok",
    ):
        DiscordProvider.parse_credentials({"webhook_url": url})
