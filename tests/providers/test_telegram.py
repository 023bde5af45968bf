import json

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.telegram import TelegramProvider, escape_markdown_v2
from tests.providers.harness import Answer, ProviderCase, ProviderContract, check, send

TOKEN = "123456789:SECRET-telegram-token_abcdefghijklmn"
URL = f"https://api.telegram.org/bot{TOKEN}/sendMessage"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1", chat_id="987654321"),
    title="Café ☕ ready",
    body="Pick it up at the counter.",
)

SENT = {
    "ok": True,
    "result": {
        "message_id": 42,
        "from": {"id": 123456789, "is_bot": True, "first_name": "Notifier", "username": "acme_bot"},
        "chat": {"id": 987654321, "first_name": "Ada", "type": "private"},
        "date": 1764237600,
        "text": "Café ☕ ready\nPick it up at the counter.",
        "entities": [{"offset": 0, "length": 12, "type": "bold"}],
    },
}


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "chat_id": "987654321",
        "text": "Café ☕ ready\nPick it up at the counter.",
        # Offsets count UTF-16 code units: "Café ☕ ready" is 12 of them.
        "entities": [{"type": "bold", "offset": 0, "length": 12}],
    }


def telegram_error(code: int, description: str, **parameters: int) -> Answer:
    body: dict[str, object] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Answer(code, json=body)


class TestTelegram(ProviderContract):
    case = ProviderCase(
        provider=TelegramProvider,
        credentials={"bot_token": TOKEN},
        settings={"default_chat_id": "-1001234567890"},
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(200, json=SENT),
        expected_message_id="42",
        check_request=check_request,
        bad_credentials=telegram_error(401, "Unauthorized"),
        invalid_recipient=telegram_error(403, "Forbidden: bot was blocked by the user"),
        required_credential="bot_token",
        rate_limited=telegram_error(429, "Too Many Requests: retry after 7", retry_after=7),
        server_error=telegram_error(502, "Bad Gateway"),
        derived_secrets=(TOKEN.split(":")[1],),
    )


FROM_DEFAULT = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s-1")})


@pytest.mark.parametrize(
    "answer",
    [
        telegram_error(403, "Forbidden: bot was kicked from the group chat"),
        telegram_error(403, "Forbidden: user is deactivated"),
        telegram_error(400, "Bad Request: chat not found"),
        telegram_error(400, "Bad Request: PEER_ID_INVALID"),
    ],
)
def test_chat_errors_depend_on_who_chose_the_chat(answer: Answer) -> None:
    theirs = send(TestTelegram.case, answer)
    assert type(theirs.error) is RecipientError
    ours = send(TestTelegram.case, answer, message=FROM_DEFAULT)
    assert type(ours.error) is IntegrationError
    assert "default_chat_id" in ours.error.reason
    assert json.loads(ours.request.content)["chat_id"] == "-1001234567890"


def test_malformed_token_answer_404_is_an_integration_error() -> None:
    outcome = send(TestTelegram.case, telegram_error(404, "Not Found"))
    assert type(outcome.error) is IntegrationError


def test_unparsable_markup_is_an_integration_error() -> None:
    answer = telegram_error(400, "Bad Request: can't parse entities: Unsupported start tag")
    outcome = send(TestTelegram.case, answer)
    assert type(outcome.error) is IntegrationError


def test_rate_limit_uses_parameters_retry_after() -> None:
    answer = telegram_error(429, "Too Many Requests: retry after 35", retry_after=35)
    outcome = send(TestTelegram.case, answer)
    assert isinstance(outcome.error, RetryableError)
    assert outcome.error.retry_after == 35.0


def test_migrated_group_is_followed_once() -> None:
    migrated = telegram_error(
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        migrate_to_chat_id=-1009876543210,
    )
    outcome = send(TestTelegram.case, [migrated, Answer(200, json=SENT)])
    assert outcome.result is not None
    assert outcome.result.provider_message_id == "42"
    assert [json.loads(r.content)["chat_id"] for r in outcome.requests] == [
        "987654321",
        "-1009876543210",
    ]


def test_no_chat_anywhere_fails_before_sending() -> None:
    outcome = send(TestTelegram.case, Answer(200, json=SENT), message=FROM_DEFAULT, settings={})
    assert type(outcome.error) is IntegrationError
    assert outcome.requests == []


def test_description_echoing_the_token_is_redacted() -> None:
    outcome = send(TestTelegram.case, telegram_error(400, f"Bad Request: weird {URL}"))
    assert outcome.error is not None
    assert "SECRET" not in str(outcome.error)


def test_html_parse_mode_escapes_the_heading_only() -> None:
    message = MESSAGE.model_copy(update={"title": "A <b> & c", "body": "<i>hi</i>"})
    outcome = send(
        TestTelegram.case,
        Answer(200, json=SENT),
        message=message,
        settings={"parse_mode": "HTML", "disable_notification": True},
    )
    body = json.loads(outcome.request.content)
    assert body["parse_mode"] == "HTML"
    assert body["text"] == "<b>A &lt;b&gt; &amp; c</b>\n<i>hi</i>"
    assert body["disable_notification"] is True
    assert "entities" not in body


def test_markdown_v2_parse_mode_escapes_the_heading() -> None:
    message = MESSAGE.model_copy(update={"title": "v1.2 (beta)!", "body": "_done_"})
    outcome = send(
        TestTelegram.case,
        Answer(200, json=SENT),
        message=message,
        settings={"parse_mode": "MarkdownV2"},
    )
    assert json.loads(outcome.request.content)["text"] == "*v1\\.2 \\(beta\\)\\!*\n_done_"


def test_escape_markdown_v2_escapes_backslash_too() -> None:
    assert escape_markdown_v2("a\\b_c") == "a\\\\b\\_c"


@pytest.mark.parametrize(
    "token", ["not-a-token", "123:short", "123456789:SECRET-abcdefghijklmnopqrst/../../x"]
)
def test_token_must_look_like_a_bot_token_and_is_not_echoed(token: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TelegramProvider.parse_credentials({"bot_token": token})
    assert token not in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (
            Answer(
                200,
                json={
                    "ok": True,
                    "result": {"id": 123456789, "is_bot": True, "username": "acme_bot"},
                },
            ),
            True,
        ),
        (telegram_error(401, "Unauthorized"), False),
    ],
)
def test_check_calls_get_me(answer: Answer, ok: bool) -> None:
    result, _ = check(
        TestTelegram.case, answer, url=f"https://api.telegram.org/bot{TOKEN}/getMe", method="POST"
    )
    assert result.ok is ok
    assert "SECRET" not in result.detail
    if ok:
        assert result.detail == "bot @acme_bot"


def test_bold_entity_counts_astral_characters_as_two_utf16_units() -> None:
    message = MESSAGE.model_copy(update={"title": "🚀 Launch", "body": ""})
    outcome = send(TestTelegram.case, Answer(200, json=SENT), message=message)
    body = json.loads(outcome.request.content)
    assert body["text"] == "🚀 Launch"
    assert body["entities"] == [{"type": "bold", "offset": 0, "length": 9}]
