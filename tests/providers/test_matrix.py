"""Matrix, against the client-server API specification (spec.matrix.org, v1.14, 2025): "PUT
/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}" (the transaction id the homeserver
de-duplicates on, the ``event_id`` answer, 400/404/429 of that endpoint), "m.room.message" /
``m.text`` with ``org.matrix.custom.html``, "Standard error response" (``errcode``: M_FORBIDDEN,
M_UNKNOWN_TOKEN, M_NOT_FOUND, M_LIMIT_EXCEEDED with ``retry_after_ms``, M_TOO_LARGE) and "GET
/_matrix/client/v3/account/whoami"."""

import json

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.matrix import MatrixProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

HOMESERVER = "https://matrix.example.org"
ROOM = "!636q39766251:example.org"
ROOM_IN_PATH = "%21636q39766251%3Aexample.org"
SEND = f"{HOMESERVER}/_matrix/client/v3/rooms/{ROOM_IN_PATH}/send/m.room.message"
URL = f"{SEND}/dlv-d-1"
TOKEN = "syt_SECRETbWF0cml4Ym90_0123456789abcdef_1a2b3c"
CREDENTIALS = {"access_token": TOKEN}
SETTINGS = {"base_url": HOMESERVER, "room_id": "!defaultroom:example.org"}

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1", chat_id=ROOM),
    title="Deploy finished",
    body="api <v2.3> is live",
)


def matrix_error(status: int, errcode: str, error: str, **extra: object) -> Answer:
    return Answer(status, json={"errcode": errcode, "error": error, **extra})


def check_request(request: httpx.Request) -> None:
    assert request.method == "PUT"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "msgtype": "m.text",
        "body": "Deploy finished\napi <v2.3> is live",
        "format": "org.matrix.custom.html",
        "formatted_body": "<strong>Deploy finished</strong><br>api &lt;v2.3&gt; is live",
    }


NOT_IN_ROOM = matrix_error(
    403, "M_FORBIDDEN", "User @alerts:example.org not in room !636q39766251:example.org"
)


class TestMatrix(ProviderContract):
    case = ProviderCase(
        provider=MatrixProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="PUT",
        url=URL,
        success=Answer(200, json={"event_id": "$YUwRidLecu:example.com"}),
        expected_message_id="$YUwRidLecu:example.com",
        check_request=check_request,
        bad_credentials=matrix_error(
            401, "M_UNKNOWN_TOKEN", "Invalid access token passed.", soft_logout=False
        ),
        invalid_recipient=NOT_IN_ROOM,
        required_credential="access_token",
        rate_limited=Answer(
            429,
            json={
                "errcode": "M_LIMIT_EXCEEDED",
                "error": "Too many requests",
                "retry_after_ms": 7000,
            },
            headers={"Retry-After": "7"},
        ),
        idempotency_key=lambda request: request.url.path.rsplit("/", 1)[-1],
        refusals=(
            Refusal(NOT_IN_ROOM, RecipientError, "M_FORBIDDEN"),
            Refusal(
                matrix_error(404, "M_NOT_FOUND", "Unknown room"), RecipientError, "M_NOT_FOUND"
            ),
            Refusal(
                matrix_error(413, "M_TOO_LARGE", "event too large"), RecipientError, "M_TOO_LARGE"
            ),
            Refusal(
                matrix_error(401, "M_MISSING_TOKEN", "Missing access token"),
                IntegrationError,
                "M_MISSING_TOKEN",
            ),
            Refusal(
                matrix_error(400, "M_BAD_JSON", "Content not JSON."), IntegrationError, "M_BAD_JSON"
            ),
        ),
    )

    def test_the_deliverys_idempotency_key_is_sent_the_same_on_every_retry(self) -> None:
        # The key is the path's last segment, so another delivery is answered at another URL.
        first, retried = (send(self.case, self.case.success).request for _ in range(2))
        other = self.case.message.model_copy(update={"delivery_id": "another-delivery"})
        elsewhere = send(
            self.case, self.case.success, message=other, url=f"{SEND}/dlv-another-delivery"
        ).request
        assert first.url == retried.url
        assert first.url.path.endswith("/dlv-d-1")
        assert elsewhere.url.path.endswith("/dlv-another-delivery")


def test_the_wait_in_milliseconds_without_a_header() -> None:
    answer = matrix_error(429, "M_LIMIT_EXCEEDED", "Too many requests", retry_after_ms=2500)
    outcome = send(TestMatrix.case, answer)
    assert isinstance(outcome.error, RetryableError)
    assert outcome.error.retry_after == 2.5


def test_the_room_id_setting_is_ours_and_its_refusal_too() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(subscriber_id="s-1")})
    url = f"{HOMESERVER}/_matrix/client/v3/rooms/%21defaultroom%3Aexample.org/send/m.room.message/dlv-d-1"
    outcome = send(TestMatrix.case, NOT_IN_ROOM, message=message, url=url)
    assert type(outcome.error) is IntegrationError
    assert "room_id setting" in outcome.error.reason


@pytest.mark.parametrize("chat_id", ["#ops:example.org", "@ada:example.org", "ops"])
def test_only_room_ids_are_sent_to(chat_id: str) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(chat_id=chat_id)})
    outcome = send(TestMatrix.case, TestMatrix.case.success, message=message)
    assert type(outcome.error) is RecipientError
    assert outcome.requests == []


def test_the_messages_own_html_and_a_notice() -> None:
    message = MESSAGE.model_copy(update={"html": "<p>api <b>v2.3</b> is live</p>", "title": None})
    outcome = send(
        TestMatrix.case,
        TestMatrix.case.success,
        message=message,
        settings={**SETTINGS, "msgtype": "m.notice"},
    )
    assert json.loads(outcome.request.content) == {
        "msgtype": "m.notice",
        "body": "api <v2.3> is live",
        "format": "org.matrix.custom.html",
        "formatted_body": "<p>api <b>v2.3</b> is live</p>",
    }
    plain = MESSAGE.model_copy(update={"title": None})
    body = json.loads(send(TestMatrix.case, TestMatrix.case.success, message=plain).request.content)
    assert body == {"msgtype": "m.text", "body": "api <v2.3> is live"}


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (Answer(200, json={"user_id": "@alerts:example.org", "device_id": "ABCDEF"}), True),
        (matrix_error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed."), False),
    ],
)
def test_check_asks_who_the_token_is(answer: Answer, ok: bool) -> None:
    result, request = check(
        TestMatrix.case, answer, url=f"{HOMESERVER}/_matrix/client/v3/account/whoami"
    )
    assert result.ok is ok
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in result.detail
