import json

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.slack import SlackProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, check, send

URL = "https://slack.com/api/chat.postMessage"
TOKEN = "xoxb-SECRET-slack-bot-token"
CREDENTIALS = {"bot_token": TOKEN}
SETTINGS = {"default_channel": "C0DEFAULT"}

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1", chat_id="C1H9RESGL"),
    title="Deploy finished",
    body="api v2.3 is live",
)


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(request.content) == {
        "channel": "C1H9RESGL",
        "text": "*Deploy finished*\napi v2.3 is live",
    }


class TestSlack(ProviderContract):
    case = ProviderCase(
        provider=SlackProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            200,
            json={
                "ok": True,
                "channel": "C1H9RESGL",
                "ts": "1503435956.000247",
                "message": {"text": "Deploy finished", "ts": "1503435956.000247"},
            },
        ),
        expected_message_id="1503435956.000247",
        check_request=check_request,
        # Slack reports almost every failure as HTTP 200 with ok: false.
        bad_credentials=Answer(200, json={"ok": False, "error": "invalid_auth"}),
        invalid_recipient=Answer(200, json={"ok": False, "error": "channel_not_found"}),
        required_credential="bot_token",
        rate_limited=Answer(
            429, json={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "7"}
        ),
    )


FROM_DEFAULT = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s-1")})


@pytest.mark.parametrize(
    "code", ["invalid_auth", "not_authed", "account_inactive", "token_revoked", "missing_scope"]
)
def test_token_errors_are_integration_errors(code: str) -> None:
    outcome = send(TestSlack.case, Answer(200, json={"ok": False, "error": code}))
    assert type(outcome.error) is IntegrationError
    assert outcome.error.provider_code == code
    assert "token" in outcome.error.reason


@pytest.mark.parametrize("code", ["channel_not_found", "is_archived", "not_in_channel"])
def test_destination_errors_depend_on_who_chose_the_channel(code: str) -> None:
    answer = Answer(200, json={"ok": False, "error": code})
    theirs = send(TestSlack.case, answer)
    assert type(theirs.error) is RecipientError
    assert theirs.error.provider_code == code
    ours = send(TestSlack.case, answer, message=FROM_DEFAULT)
    assert type(ours.error) is IntegrationError
    assert "default_channel" in ours.error.reason
    assert json.loads(ours.request.content)["channel"] == "C0DEFAULT"


@pytest.mark.parametrize("code", ["ratelimited", "internal_error", "fatal_error"])
def test_transient_codes_in_a_200_are_retried(code: str) -> None:
    outcome = send(TestSlack.case, Answer(200, json={"ok": False, "error": code}))
    assert isinstance(outcome.error, RetryableError)
    assert outcome.error.provider_code == code


@pytest.mark.parametrize("code", ["msg_too_long", "too_many_attachments"])
def test_message_refusals_fail_the_message_not_the_integration(code: str) -> None:
    # The same message is refused by every Slack integration: trying the fallbacks only burns
    # them, so the failure is permanent for the message, wherever the channel came from.
    for message in (MESSAGE, FROM_DEFAULT):
        outcome = send(
            TestSlack.case, Answer(200, json={"ok": False, "error": code}), message=message
        )
        assert type(outcome.error) is RecipientError
        assert outcome.error.provider_code == code


def test_unknown_code_is_an_integration_error() -> None:
    outcome = send(TestSlack.case, Answer(200, json={"ok": False, "error": "invalid_arg_name"}))
    assert type(outcome.error) is IntegrationError
    assert outcome.error.provider_code == "invalid_arg_name"


def test_200_without_ok_is_an_integration_error() -> None:
    outcome = send(TestSlack.case, Answer(200, text="<html>captive portal</html>"))
    assert type(outcome.error) is IntegrationError


def test_no_channel_anywhere_fails_before_sending() -> None:
    outcome = send(
        TestSlack.case, Answer(200, json={"ok": True}), message=FROM_DEFAULT, settings={}
    )
    assert type(outcome.error) is IntegrationError
    assert "default_channel" in outcome.error.reason
    assert outcome.requests == []


def test_blocks_and_options_pass_through() -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    message = MESSAGE.model_copy(
        update={"options": {"blocks": blocks, "thread_ts": "1.2", "unknown": "dropped"}}
    )
    outcome = send(TestSlack.case, Answer(200, json={"ok": True, "ts": "9.9"}), message=message)
    body = json.loads(outcome.request.content)
    assert body["blocks"] == blocks
    assert body["thread_ts"] == "1.2"
    assert "unknown" not in body
    assert body["text"] == "*Deploy finished*\napi v2.3 is live"


def test_gov_slack_base_url() -> None:
    settings = {**SETTINGS, "base_url": "https://slack-gov.com/api/"}
    outcome = send(
        TestSlack.case,
        Answer(200, json={"ok": True, "ts": "1.0"}),
        settings=settings,
        url="https://slack-gov.com/api/chat.postMessage",
    )
    assert outcome.result is not None
    assert outcome.result.provider_message_id == "1.0"


def test_base_url_must_be_https() -> None:
    with pytest.raises(ValueError, match="https"):
        SlackProvider.parse_settings({"base_url": "http://slack.com/api"})


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (
            Answer(
                200,
                json={
                    "ok": True,
                    "url": "https://acme.slack.com/",
                    "team": "Acme",
                    "user": "notifier",
                    "team_id": "T123",
                    "user_id": "U123",
                },
            ),
            True,
        ),
        (Answer(200, json={"ok": False, "error": "invalid_auth"}), False),
    ],
)
def test_check_calls_auth_test(answer: Answer, ok: bool) -> None:
    result, request = check(
        TestSlack.case, answer, url="https://slack.com/api/auth.test", method="POST"
    )
    assert result.ok is ok
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "SECRET" not in result.detail
    if ok:
        assert "Acme" in result.detail
