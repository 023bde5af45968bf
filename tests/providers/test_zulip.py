"""Zulip, against its REST API documentation (Zulip 10, 2025): "Send a message"
(https://zulip.com/api/send-message: the form fields, the ``id`` answer, the
``STREAM_DOES_NOT_EXIST`` and ``Invalid email`` example errors), "HTTP basic authentication" and
"Error handling" (https://zulip.com/api/rest-error-handling: ``INVALID_API_KEY``,
``RATE_LIMIT_HIT`` with ``retry-after``) and "Get own user" (https://zulip.com/api/get-own-user).
"""

from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.zulip import ZulipProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

SITE = "https://acme.zulipchat.com"
URL = f"{SITE}/api/v1/messages"
API_KEY = "SECRETzulipbotapikey0123456789ab"
CREDENTIALS = {"email": "alerts-bot@acme.zulipchat.com", "api_key": API_KEY}
SETTINGS = {"base_url": SITE, "stream": "ops"}

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1", chat_id="deploys>api"),
    title="Deploy finished",
    body="api v2.3 is live",
)


def fields(request: httpx.Request) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(request.content.decode()).items()}


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    expected = httpx.BasicAuth("alerts-bot@acme.zulipchat.com", API_KEY)
    assert (
        request.headers["authorization"]
        == next(expected.auth_flow(httpx.Request("GET", SITE))).headers["authorization"]
    )
    assert fields(request) == {
        "type": "stream",
        "to": "deploys",
        "topic": "api",
        "content": "**Deploy finished**\napi v2.3 is live",
    }


def error(status: int, code: str, msg: str, **extra: object) -> Answer:
    return Answer(status, json={"result": "error", "msg": msg, "code": code, **extra})


NO_STREAM = error(
    400, "STREAM_DOES_NOT_EXIST", "Channel 'deploys' does not exist", stream="deploys"
)
INVALID_USER = error(400, "BAD_REQUEST", "Invalid email 'eeshan@zulip.com'")


class TestZulip(ProviderContract):
    case = ProviderCase(
        provider=ZulipProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            200,
            json={"automatic_new_visibility_policy": 2, "id": 42, "msg": "", "result": "success"},
        ),
        expected_message_id="42",
        check_request=check_request,
        bad_credentials=error(401, "INVALID_API_KEY", "Invalid API key"),
        invalid_recipient=NO_STREAM,
        required_credential="api_key",
        rate_limited=Answer(
            429,
            json={
                "code": "RATE_LIMIT_HIT",
                "msg": "API usage exceeded rate limit",
                "result": "error",
                "retry-after": 7.0,
            },
            headers={"Retry-After": "7"},
        ),
        refusals=(
            Refusal(NO_STREAM, RecipientError, "STREAM_DOES_NOT_EXIST"),
            Refusal(
                error(401, "USER_DEACTIVATED", "Account is deactivated"),
                IntegrationError,
                "USER_DEACTIVATED",
            ),
            Refusal(
                error(400, "BAD_REQUEST", "Missing 'content' argument"),
                IntegrationError,
                "BAD_REQUEST",
            ),
        ),
    )


def test_the_wait_in_the_body_is_used_without_a_header() -> None:
    answer = Answer(
        429, json={"code": "RATE_LIMIT_HIT", "result": "error", "msg": "", "retry-after": 28.7}
    )
    outcome = send(TestZulip.case, answer)
    assert isinstance(outcome.error, RetryableError)
    assert outcome.error.retry_after == 28.7


@pytest.mark.parametrize(
    ("chat_id", "expected"),
    [
        ("@42", {"type": "private", "to": "[42]"}),
        ("@ada@example.com", {"type": "private", "to": '["ada@example.com"]'}),
    ],
)
def test_a_chat_id_with_an_at_sign_is_a_direct_message(
    chat_id: str, expected: dict[str, str]
) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(chat_id=chat_id)})
    outcome = send(TestZulip.case, TestZulip.case.success, message=message)
    assert fields(outcome.request) == {
        **expected,
        "content": "**Deploy finished**\napi v2.3 is live",
    }
    invalid = send(TestZulip.case, INVALID_USER, message=message)
    assert type(invalid.error) is RecipientError


def test_without_a_topic_the_heading_is_the_topic_and_the_stream_setting_is_ours() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s-1")})
    outcome = send(TestZulip.case, NO_STREAM, message=message)
    assert fields(outcome.request) == {
        "type": "stream",
        "to": "ops",
        "topic": "Deploy finished",
        "content": "api v2.3 is live",
    }
    assert type(outcome.error) is IntegrationError
    assert "stream setting" in outcome.error.reason


def test_a_topic_setting_and_the_60_character_limit() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(chat_id=f"ops>{'t' * 80}")})
    outcome = send(TestZulip.case, TestZulip.case.success, message=message)
    assert fields(outcome.request)["topic"] == "t" * 60
    plain = MESSAGE.model_copy(update={"to": Recipient(chat_id="ops")})
    configured = {**SETTINGS, "topic": "alerts"}
    outcome = send(TestZulip.case, TestZulip.case.success, message=plain, settings=configured)
    assert fields(outcome.request)["topic"] == "alerts"


def test_no_destination_at_all_is_an_integration_error_before_any_request() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s-1")})
    outcome = send(
        TestZulip.case, TestZulip.case.success, message=message, settings={"base_url": SITE}
    )
    assert type(outcome.error) is IntegrationError
    assert outcome.requests == []


def test_an_error_inside_a_200_is_not_success() -> None:
    outcome = send(TestZulip.case, Answer(200, json={"result": "error", "msg": "odd"}))
    assert type(outcome.error) is IntegrationError


@pytest.mark.parametrize(
    "site", ["http://chat.example.com", "https://chat.example.com:8443", "https://x?y=1", "nope"]
)
def test_the_site_must_be_an_https_origin(site: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ZulipProvider.parse_settings({"base_url": site})
    assert "base_url" in str(caught.value)


def test_a_self_hosted_site_under_a_path() -> None:
    site = "https://example.com/zulip/"
    outcome = send(
        TestZulip.case,
        TestZulip.case.success,
        settings={"base_url": site, "stream": "ops"},
        url="https://example.com/zulip/api/v1/messages",
    )
    assert outcome.result is not None


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (Answer(200, json={"result": "success", "full_name": "Alerts", "user_id": 7}), True),
        (error(401, "INVALID_API_KEY", "Invalid API key"), False),
    ],
)
def test_check_reads_the_bots_own_user(answer: Answer, ok: bool) -> None:
    result, request = check(TestZulip.case, answer, url=f"{SITE}/api/v1/users/me")
    assert result.ok is ok
    assert request.headers["authorization"].startswith("Basic ")
    assert API_KEY not in result.detail
