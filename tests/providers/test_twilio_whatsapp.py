"""Twilio WhatsApp against Twilio's documentation: "WhatsApp API reference"
(https://www.twilio.com/docs/whatsapp/api, Messages API 2010-04-01: ``whatsapp:`` prefixed
``From``/``To``, Content templates as ``ContentSid``/``ContentVariables``) and the error
dictionary (https://www.twilio.com/docs/api/errors, codes 63003-63112 tabled below).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.twilio_whatsapp import TwilioWhatsAppProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send
from tests.providers.test_twilio import twilio_error

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
ACCOUNT_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
URL = f"{ACCOUNT_URL}/Messages.json"
CREDENTIALS = {"account_sid": ACCOUNT_SID, "auth_token": "SECRET-twilio-wa-token"}
SETTINGS = {"from_number": "+14155238886"}
BASIC_TOKEN = base64.b64encode(f"{ACCOUNT_SID}:SECRET-twilio-wa-token".encode()).decode()
CONTENT_SID = "HXb5b62575e6e4ff6129ad7c8efe1f983e"
MESSAGE_SID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(phone="+15005550006"),
    body="Your appointment is coming up on July 21 at 3PM",
)


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Basic {BASIC_TOKEN}"
    assert form(request) == {
        "To": ["whatsapp:+15005550006"],
        "From": ["whatsapp:+14155238886"],
        "Body": ["Your appointment is coming up on July 21 at 3PM"],
    }


REFUSALS = tuple(
    Refusal(twilio_error(status, code, "refused"), expected, str(code))
    for status, code, expected in [
        (400, 63003, RecipientError),
        (400, 63016, RecipientError),
        (400, 63024, RecipientError),
        (400, 63032, RecipientError),
        (400, 63049, RecipientError),
        (400, 63007, IntegrationError),
        (400, 63027, IntegrationError),
        (400, 63028, IntegrationError),
        (400, 63112, IntegrationError),
        (429, 63018, RetryableError),
        # The SMS codes still hold: the same API.
        (400, 21211, RecipientError),
        (401, 20003, IntegrationError),
    ]
)


class TestTwilioWhatsApp(ProviderContract):
    case = ProviderCase(
        provider=TwilioWhatsAppProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            201,
            json={
                "account_sid": ACCOUNT_SID,
                "api_version": "2010-04-01",
                "body": "Your appointment is coming up on July 21 at 3PM",
                "from": "whatsapp:+14155238886",
                "sid": MESSAGE_SID,
                "status": "queued",
                "to": "whatsapp:+15005550006",
            },
        ),
        expected_message_id=MESSAGE_SID,
        check_request=check_request,
        bad_credentials=twilio_error(401, 20003, "Authenticate"),
        invalid_recipient=twilio_error(400, 63003, "Channel could not find To address"),
        required_credential="auth_token",
        derived_secrets=(BASIC_TOKEN,),
        refusals=REFUSALS,
    )


def test_content_template_replaces_the_body() -> None:
    message = MESSAGE.model_copy(
        update={
            "body": "",
            "options": {"content_sid": CONTENT_SID, "content_variables": {"1": "12/1", 2: "3pm"}},
        }
    )
    outcome = send(TestTwilioWhatsApp.case, TestTwilioWhatsApp.case.success, message=message)
    fields = form(outcome.request)
    assert "Body" not in fields
    assert fields["ContentSid"] == [CONTENT_SID]
    assert json.loads(fields["ContentVariables"][0]) == {"1": "12/1", "2": "3pm"}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"content_sid": "SM123"}, "options.content_sid"),
        ({"content_sid": CONTENT_SID, "content_variables": ["a"]}, "options.content_variables"),
        ({"content_variables": {"1": "a"}}, "options.content_variables"),
    ],
)
def test_bad_content_options_fail_before_sending(options: dict[str, object], field: str) -> None:
    message = MESSAGE.model_copy(update={"options": options})
    outcome = send(TestTwilioWhatsApp.case, TestTwilioWhatsApp.case.success, message=message)
    assert type(outcome.value) is RecipientError
    assert field in str(outcome.value)
    assert outcome.requests == []


def test_prefixed_sender_and_messaging_service() -> None:
    service = "MG0123456789abcdef0123456789abcdef"
    outcome = send(
        TestTwilioWhatsApp.case,
        TestTwilioWhatsApp.case.success,
        settings={"from_number": "whatsapp:+14155238886", "messaging_service_sid": service},
    )
    fields = form(outcome.request)
    assert fields["From"] == ["whatsapp:+14155238886"]
    assert fields["MessagingServiceSid"] == [service]


def test_outside_the_window_points_at_templates() -> None:
    error = send(
        TestTwilioWhatsApp.case,
        twilio_error(
            400,
            63016,
            "Failed to send freeform message because you are outside the allowed window.",
        ),
    ).value
    assert type(error) is RecipientError
    assert "options.content_sid" in str(error)
    assert error.provider == "twilio_whatsapp"


def test_empty_text_fails_as_this_providers() -> None:
    message = MESSAGE.model_copy(update={"body": " "})
    outcome = send(TestTwilioWhatsApp.case, TestTwilioWhatsApp.case.success, message=message)
    assert type(outcome.value) is RecipientError
    assert outcome.value.provider == "twilio_whatsapp"


def test_check_is_twilios_account_read() -> None:
    result, request = check(
        TestTwilioWhatsApp.case, Answer(200, json={"status": "active"}), url=f"{ACCOUNT_URL}.json"
    )
    assert result.ok
    assert request.headers["authorization"] == f"Basic {BASIC_TOKEN}"
