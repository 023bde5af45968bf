"""Sinch SMS, against its documentation: the SMS REST API reference, "Batches: Send"
(https://developers.sinch.com/docs/sms/api-reference/sms/tag/Batches/, read December 2026: the
regional hosts, bearer authentication, the request and the 201 batch answer) and "HTTP Status
Codes for the SMS REST API" (https://developers.sinch.com/docs/sms/api-reference/status-codes/:
the ``code``/``text`` bodies of 400 and 403 and their codes)."""

import json

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.sinch import SinchProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

PLAN = "a1b2c3d4e5f6a7b8c9d0"
URL = f"https://eu.sms.api.sinch.com/xms/v1/{PLAN}/batches"
CREDENTIALS = {"service_plan_id": PLAN, "api_token": "SECRET-sinch-9f8e7d6c5b4a"}
SETTINGS = {
    "sender": "+447520651234",
    "region": "eu",
    "callback_url": "https://hooks.example.com/sinch",
}
MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.SMS,
    to=Recipient(phone="+15551231234"),
    body="Your code is 123456",
)
BATCH_ID = "01FC66621XXXXX119Z8PMV1QPQ"


def error(status: int, code: str, text: str) -> Answer:
    """Sinch's documented refusal shape for 400 and 403."""
    return Answer(status, json={"code": code, "text": text})


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == "Bearer SECRET-sinch-9f8e7d6c5b4a"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "from": "+447520651234",
        "to": ["15551231234"],
        "body": "Your code is 123456",
        "client_reference": "d-1",
        "delivery_report": "per_recipient",
        "callback_url": "https://hooks.example.com/sinch",
    }


REFUSALS = (
    Refusal(error(400, "syntax_invalid_json", "The JSON input is invalid"), IntegrationError,
            "syntax_invalid_json"),
    Refusal(error(400, "syntax_constraint_violation", "body: must not be empty"),
            IntegrationError),
    Refusal(error(400, "syntax_invalid_parameter_format", "Invalid format of field 'from'"),
            IntegrationError),
    Refusal(error(400, "syntax_invalid_parameter_format", "Invalid MSISDN '1555' in field 'to'"),
            RecipientError),
    Refusal(error(403, "blocked_account", "Account is blocked"), IntegrationError),
    Refusal(error(403, "missing_callback_url", "No callback URL"), IntegrationError),
    Refusal(error(403, "illegal_number_type", "Illegal number type"), RecipientError),
    Refusal(error(403, "no_valid_recipient", "No valid recipient"), RecipientError),
    Refusal(Answer(500, text="Internal Server Error"), RetryableError),
)  # fmt: skip


class TestSinch(ProviderContract):
    case = ProviderCase(
        provider=SinchProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            201,
            json={
                "id": BATCH_ID,
                "to": ["15551231234"],
                "from": "+447520651234",
                "canceled": False,
                "body": "Your code is 123456",
                "type": "mt_text",
                "created_at": "2026-12-02T04:00:00.000Z",
                "modified_at": "2026-12-02T04:00:00.000Z",
                "delivery_report": "per_recipient",
                "client_reference": "d-1",
            },
        ),
        expected_message_id=BATCH_ID,
        check_request=check_request,
        bad_credentials=Answer(401, text=""),
        invalid_recipient=error(403, "illegal_number_type", "Illegal number type"),
        required_credential="api_token",
        refusals=REFUSALS,
    )


@pytest.mark.parametrize("region", ["us", "au", "br", "ca"])
def test_the_region_fixes_the_host(region: str) -> None:
    url = f"https://{region}.sms.api.sinch.com/xms/v1/{PLAN}/batches"
    outcome = send(TestSinch.case, TestSinch.case.success, settings={"region": region}, url=url)
    assert outcome.sent.provider_message_id == BATCH_ID
    body = json.loads(outcome.request.content)
    assert "from" not in body
    assert "callback_url" not in body
    assert "delivery_report" not in body


def test_the_service_plan_id_cannot_change_the_path() -> None:
    with pytest.raises(ValueError, match="service_plan_id"):
        SinchProvider.parse_credentials({"service_plan_id": "../x", "api_token": "t"})


@pytest.mark.parametrize(
    ("answer", "ok"), [(Answer(200, json={"batches": [], "page": 0}), True), (Answer(401), False)]
)
def test_check(answer: Answer, ok: bool) -> None:
    result, request = check(TestSinch.case, answer, url=f"{URL}?page_size=1")
    assert request.headers["authorization"] == "Bearer SECRET-sinch-9f8e7d6c5b4a"
    assert result.ok is ok
