import json

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.slack_webhook import SlackWebhookProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, send

TOKEN = "SECRETslackhooktoken000001"
URL = f"https://hooks.slack.com/services/T00000000/B00000000/{TOKEN}"
THEIR_TOKEN = "SECRETsubscriberhooktoken2"
THEIR_URL = f"https://hooks.slack.com/services/T11111111/B11111111/{THEIR_TOKEN}"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1"),
    subject="Invoice paid",
    body="Thanks!",
)
THEIRS = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s-1", webhook_url=THEIR_URL)})


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {"text": "*Invoice paid*\nThanks!"}


class TestSlackWebhook(ProviderContract):
    case = ProviderCase(
        provider=SlackWebhookProvider,
        credentials={"webhook_url": URL},
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, text="ok"),
        expected_message_id=None,
        check_request=check_request,
        # A revoked webhook: the integration's own URL is broken.
        bad_credentials=Answer(403, text="invalid_token"),
        # The integration's webhook fixes the channel, so no answer is about the recipient;
        # a subscriber's own webhook is covered below.
        invalid_recipient=None,
        required_credential="webhook_url",
        rate_limited=Answer(429, text="rate_limited", headers={"Retry-After": "7"}),
        server_error=Answer(500, text="rollup_error"),
        derived_secrets=(TOKEN,),
    )


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (Answer(404, text="channel_not_found"), "channel_not_found"),
        (Answer(410, text="channel_is_archived"), "channel_is_archived"),
        (Answer(404, text="no_service"), "no_service"),
        (Answer(403, text="action_prohibited"), "action_prohibited"),
    ],
)
def test_gone_destination_depends_on_whose_webhook(answer: Answer, code: str) -> None:
    ours = send(TestSlackWebhook.case, answer)
    assert type(ours.error) is IntegrationError
    assert ours.error.provider_code == code
    theirs = send(TestSlackWebhook.case, answer, message=THEIRS, url=THEIR_URL)
    assert type(theirs.error) is RecipientError
    assert "subscriber" in theirs.error.reason
    assert THEIR_TOKEN not in str(theirs.error)


def test_subscriber_webhook_is_used_instead_of_the_integrations() -> None:
    outcome = send(TestSlackWebhook.case, Answer(200, text="ok"), message=THEIRS, url=THEIR_URL)
    assert outcome.result is not None
    assert str(outcome.request.url) == THEIR_URL


def test_invalid_payload_is_an_integration_error_even_for_a_subscriber_url() -> None:
    outcome = send(
        TestSlackWebhook.case, Answer(400, text="invalid_payload"), message=THEIRS, url=THEIR_URL
    )
    assert type(outcome.error) is IntegrationError
    assert outcome.error.provider_code == "invalid_payload"


def test_rollup_error_is_retried() -> None:
    outcome = send(TestSlackWebhook.case, Answer(500, text="rollup_error"))
    assert isinstance(outcome.error, RetryableError)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/services/T1/B1/x",
        "http://hooks.slack.com/services/T1/B1/x",
        "https://hooks.slack.com/api/chat.postMessage",
    ],
)
def test_subscriber_url_off_slack_is_refused_before_sending(url: str) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=url)})
    outcome = send(TestSlackWebhook.case, Answer(200, text="ok"), message=message)
    assert type(outcome.error) is RecipientError
    assert outcome.requests == []
    assert url not in str(outcome.error)


def test_error_body_echoing_the_url_is_redacted() -> None:
    outcome = send(TestSlackWebhook.case, Answer(400, text=f"bad request to {URL}"))
    assert outcome.error is not None
    assert TOKEN not in str(outcome.error)
    assert "[redacted]" in outcome.error.reason


def test_configured_url_must_be_a_slack_webhook_and_is_not_echoed() -> None:
    with pytest.raises(ValidationError) as caught:
        SlackWebhookProvider.parse_credentials({"webhook_url": "https://evil.example/SECRET-x"})
    assert "SECRET" not in str(caught.value)
    assert "hooks.slack.com" in str(caught.value)


def test_blocks_and_options_pass_through() -> None:
    blocks = [{"type": "divider"}]
    message = MESSAGE.model_copy(update={"options": {"blocks": blocks, "username": "Billing"}})
    outcome = send(TestSlackWebhook.case, Answer(200, text="ok"), message=message)
    body = json.loads(outcome.request.content)
    assert body == {"text": "*Invoice paid*\nThanks!", "blocks": blocks, "username": "Billing"}
