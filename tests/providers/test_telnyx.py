import json

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient, SendResult
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.telnyx import TelnyxProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

URL = "https://api.telnyx.com/v2/messages"
CREDENTIALS = {"api_key": "SECRET-telnyx-key"}
PROFILE_ID = "400174af-0a13-4e28-b4f5-0a5f5c0e0001"
SETTINGS = {
    "from_number": "+18445550001",
    "messaging_profile_id": PROFILE_ID,
    "webhook_url": "https://hooks.example.com/telnyx",
}
MESSAGE_ID = "40385f64-5717-4562-b3fc-2c963f66afa6"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.SMS,
    to=Recipient(phone="+18665550001"),
    body="Your code is 123456",
)


def telnyx_error(
    status: int, code: str, title: str, pointer: str | None = None, **headers: str
) -> Answer:
    """Telnyx's documented error body."""
    error: dict[str, object] = {
        "code": code,
        "title": title,
        "detail": f"{title}.",
        "meta": {"url": f"https://developers.telnyx.com/docs/overview/errors/{code}"},
    }
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    return Answer(status, json={"errors": [error]}, headers=headers)


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == "Bearer SECRET-telnyx-key"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "from": "+18445550001",
        "to": "+18665550001",
        "text": "Your code is 123456",
        "type": "SMS",
        "messaging_profile_id": PROFILE_ID,
        "webhook_url": "https://hooks.example.com/telnyx",
    }


#: Telnyx's error codes (and the field they point at) and the error each must become.
REFUSALS = tuple(
    Refusal(telnyx_error(status, code, "refused", pointer=pointer), expected, code)
    for status, code, pointer, expected in [
        (401, "10009", None, IntegrationError),
        (403, "10010", None, IntegrationError),
        (429, "10011", None, RetryableError),
        (400, "40300", "/to", RecipientError),
        (400, "40310", "/to", RecipientError),
        (422, "10001", "/to", RecipientError),
        (422, "10002", "/to", RecipientError),
        (422, "10016", "/to", RecipientError),
        # The same number codes about the sender are the integration's fault.
        (422, "10002", "/from", IntegrationError),
        (422, "10016", "/from", IntegrationError),
        (422, "10004", "/text", IntegrationError),
        (500, "10007", None, RetryableError),
    ]
)


class TestTelnyx(ProviderContract):
    case = ProviderCase(
        provider=TelnyxProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            200,
            json={
                "data": {
                    "record_type": "message",
                    "direction": "outbound",
                    "id": MESSAGE_ID,
                    "type": "SMS",
                    "messaging_profile_id": PROFILE_ID,
                    "from": {"phone_number": "+18445550001", "carrier": "TELNYX LLC"},
                    "to": [{"phone_number": "+18665550001", "status": "queued"}],
                    "text": "Your code is 123456",
                    "encoding": "GSM-7",
                    "parts": 1,
                    "errors": [],
                }
            },
        ),
        expected_message_id=MESSAGE_ID,
        check_request=check_request,
        bad_credentials=telnyx_error(401, "10009", "Authentication failed"),
        invalid_recipient=telnyx_error(400, "40310", "Invalid 'to' address", pointer="/to"),
        required_credential="api_key",
        rate_limited=telnyx_error(429, "10011", "Too many requests", **{"Retry-After": "7"}),
        refusals=REFUSALS,
    )


def test_stop_is_a_recipient_error_even_without_pointer() -> None:
    outcome = send(TestTelnyx.case, telnyx_error(400, "40300", "Blocked due to STOP message")).value
    assert type(outcome) is RecipientError
    assert "STOP" in str(outcome)


def test_number_pool_sends_without_from() -> None:
    sent = send(
        TestTelnyx.case,
        Answer(200, json={"data": {"id": "m-pool"}}),
        settings={"messaging_profile_id": PROFILE_ID},
    )
    outcome, requests = sent.value, sent.requests
    assert isinstance(outcome, SendResult)
    assert outcome.provider_message_id == "m-pool"
    body = json.loads(requests[0].content)
    assert "from" not in body
    assert body["messaging_profile_id"] == PROFILE_ID


def test_settings_need_a_sender() -> None:
    with pytest.raises(ValidationError, match="from_number or messaging_profile_id"):
        TelnyxProvider.parse_settings({"webhook_url": "https://hooks.example.com"})


def test_bad_number_fails_before_sending() -> None:
    sent = send(
        TestTelnyx.case,
        Answer(200, json={"data": {"id": "x"}}),
        message=MESSAGE.model_copy(update={"to": Recipient(phone="8665550001")}),
    )
    outcome, requests = sent.value, sent.requests
    assert type(outcome) is RecipientError
    assert requests == []


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (
            Answer(
                200,
                json={
                    "data": {
                        "record_type": "balance",
                        "balance": "300.00",
                        "credit_limit": "100.00",
                        "available_credit": "400.00",
                        "currency": "USD",
                    }
                },
            ),
            True,
        ),
        (telnyx_error(401, "10009", "Authentication failed"), False),
    ],
)
def test_check_reads_the_balance(answer: Answer, ok: bool) -> None:
    result, request = check(TestTelnyx.case, answer, url="https://api.telnyx.com/v2/balance")
    assert result.ok is ok
    assert request.headers["authorization"] == "Bearer SECRET-telnyx-key"
    assert "SECRET" not in result.detail
    if ok:
        assert "300.00 USD" in result.detail
