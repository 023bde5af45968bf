"""Infobip SMS, against Infobip's own OpenAPI document for SMS ("Send SMS message",
``POST /sms/2/text/advanced``: the ``App`` API key header, the request and answer examples, the
``requestError``/``serviceException`` refusals for 400, 401, 403 and 500; as published at
https://www.infobip.com/docs/api/channels/sms/sms-messaging/outbound-sms/send-sms-message, read
December 2026), the per-account base URL (https://www.infobip.com/docs/essentials/api-essentials/base-url)
and the status codes (https://www.infobip.com/docs/essentials/api-essentials/response-status-and-error-codes)."""

import json
import uuid

import httpx
import pytest
from pydantic import ValidationError

from dispatcher.runtime.http import SendingRuntime
from dispatcher.runtime.url_guard import DestinationGuard
from dispatcher.sending.integrations import Candidate, prepare
from models import IntegrationStatus
from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.infobip_common import InfobipCredentials
from providers.infobip_sms import InfobipSmsProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

BASE_URL = "https://xk9q2p.api.infobip.com"
URL = f"{BASE_URL}/sms/2/text/advanced"
CREDENTIALS = {"api_key": "SECRET-infobip-003026bbc133714df1834b8638bb496e"}
SETTINGS = {
    "base_url": BASE_URL,
    "sender": "InfoSMS",
    "notify_url": "https://hooks.example.com/infobip",
}
MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.SMS,
    to=Recipient(phone="+41 79 302 67 27"),
    body="Your code is 123456",
)
MESSAGE_ID = "2250be2d4219-3af1-78856-aabe-1362af1edfd2"


def status(group_id: int, group: str, status_id: int, name: str, description: str) -> Answer:
    """The documented 200 for one destination, with the message's status."""
    return Answer(
        200,
        json={
            "bulkId": "2034072219640523072",
            "messages": [
                {
                    "messageId": MESSAGE_ID,
                    "status": {
                        "groupId": group_id,
                        "groupName": group,
                        "id": status_id,
                        "name": name,
                        "description": description,
                    },
                    "to": "41793026727",
                }
            ],
        },
    )


def rejected(status_id: int, name: str) -> Answer:
    return status(5, "REJECTED", status_id, name, "Message rejected")


def request_error(status_code: int, message_id: str, text: str, **headers: str) -> Answer:
    """The documented refusal of a whole request."""
    return Answer(
        status_code,
        json={"requestError": {"serviceException": {"messageId": message_id, "text": text}}},
        headers=headers,
    )


ACCEPTED = status(1, "PENDING", 26, "PENDING_ACCEPTED", "Message sent to next instance")


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == (
        "App SECRET-infobip-003026bbc133714df1834b8638bb496e"
    )
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "messages": [
            {
                "destinations": [{"to": "41793026727"}],
                "from": "InfoSMS",
                "text": "Your code is 123456",
                "callbackData": "d-1",
                "notifyUrl": "https://hooks.example.com/infobip",
            }
        ]
    }


REFUSALS = (
    Refusal(rejected(6, "REJECTED_NETWORK"), RecipientError, "REJECTED_NETWORK"),
    Refusal(rejected(8, "REJECTED_PREFIX_MISSING"), RecipientError, "REJECTED_PREFIX_MISSING"),
    Refusal(rejected(10, "REJECTED_DND"), RecipientError, "REJECTED_DND"),
    Refusal(rejected(14, "REJECTED_DESTINATION_BLOCKLISTED"), RecipientError),
    Refusal(rejected(18, "REJECTED_DESTINATION_NOT_REGISTERED"), RecipientError),
    Refusal(rejected(52, "REJECTED_DESTINATION"), RecipientError),
    Refusal(rejected(51, "MISSING_TO"), RecipientError),
    Refusal(rejected(11, "REJECTED_SOURCE"), IntegrationError),
    Refusal(rejected(12, "REJECTED_NOT_ENOUGH_CREDITS"), IntegrationError),
    Refusal(rejected(13, "REJECTED_SENDER"), IntegrationError),
    Refusal(rejected(17, "REJECTED_PREPAID_PACKAGE_EXPIRED"), IntegrationError),
    Refusal(rejected(19, "REJECTED_ROUTE_NOT_AVAILABLE"), IntegrationError),
    Refusal(rejected(20, "REJECTED_FLOODING_FILTER"), RetryableError),
    Refusal(rejected(21, "REJECTED_SYSTEM_ERROR"), RetryableError),
    Refusal(rejected(99, "REJECTED"), IntegrationError, "REJECTED"),
    Refusal(request_error(400, "BAD_REQUEST", "Bad request"), IntegrationError, "BAD_REQUEST"),
    Refusal(request_error(403, "FORBIDDEN", "Forbidden"), IntegrationError, "FORBIDDEN"),
)


class TestInfobipSms(ProviderContract):
    case = ProviderCase(
        provider=InfobipSmsProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=ACCEPTED,
        expected_message_id=MESSAGE_ID,
        check_request=check_request,
        bad_credentials=request_error(401, "UNAUTHORIZED", "Unauthorized"),
        invalid_recipient=rejected(52, "REJECTED_DESTINATION"),
        required_credential="api_key",
        rate_limited=request_error(
            429, "TOO_MANY_REQUESTS", "Too many requests", **{"Retry-After": "7"}
        ),
        server_error=request_error(
            500, "GENERAL_ERROR", "Something went wrong. Please contact support."
        ),
        refusals=REFUSALS,
    )


def test_a_delivered_status_is_accepted_and_no_sender_is_sent_when_none_is_set() -> None:
    outcome = send(
        TestInfobipSms.case,
        status(3, "DELIVERED", 5, "DELIVERED_TO_HANDSET", "Message delivered to handset"),
        settings={"base_url": BASE_URL},
    )
    assert outcome.sent.provider_message_id == MESSAGE_ID
    entry = json.loads(outcome.request.content)["messages"][0]
    assert "from" not in entry
    assert "notifyUrl" not in entry


def test_a_malformed_number_never_reaches_infobip() -> None:
    outcome = send(
        TestInfobipSms.case,
        ACCEPTED,
        message=MESSAGE.model_copy(update={"to": Recipient(phone="0")}),
    )
    assert type(outcome.error) is RecipientError
    assert outcome.requests == []


@pytest.mark.parametrize("base_url", ["xk9q2p.api.infobip.com", "http://xk9q2p.api.infobip.com"])
def test_the_base_url_must_be_an_https_url(base_url: str) -> None:
    with pytest.raises(ValidationError, match="base_url"):
        InfobipSmsProvider.parse_settings({"base_url": base_url})


def test_the_accounts_base_url_is_guarded_like_any_tenant_url() -> None:
    """The tenant chooses the host: the dispatcher refuses a private one before any request."""
    runtime = SendingRuntime(timeout=1.0, max_connections=1, url_allowlist=())
    candidate = Candidate(
        integration_id=uuid.uuid4(),
        provider="infobip_sms",
        credentials=InfobipCredentials.model_validate(CREDENTIALS),
        settings={"base_url": "https://127.0.0.2"},
        status=IntegrationStatus.ACTIVE,
    )
    with pytest.raises(IntegrationError, match=r"settings\.base_url refused: .*loopback"):
        runtime.run(prepare(candidate, DestinationGuard(), runtime))


@pytest.mark.parametrize(
    ("answer", "ok", "detail"),
    [
        (Answer(200, json={"balance": 47.79, "currency": "EUR"}), True, "47.79 EUR"),
        (request_error(401, "UNAUTHORIZED", "Unauthorized"), False, "UNAUTHORIZED"),
    ],
)
def test_check(answer: Answer, ok: bool, detail: str) -> None:
    result, request = check(TestInfobipSms.case, answer, url=f"{BASE_URL}/account/1/balance")
    assert request.headers["authorization"].startswith("App ")
    assert result.ok is ok
    assert detail in result.detail
    assert "SECRET" not in result.detail
