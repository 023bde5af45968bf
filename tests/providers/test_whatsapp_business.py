"""WhatsApp Business Cloud API against Meta's documentation: "Messages" reference
(https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages, Graph API v22.0:
text and template message bodies, the ``contacts``/``messages`` answer), "Error codes"
(https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes: the Graph error
object and the codes tabled below) and "Phone numbers" (the ``GET /{phone number id}`` read
used as the check).
"""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.whatsapp_business import WhatsAppProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, check, send

PHONE_NUMBER_ID = "106540352242922"
NUMBER_URL = f"https://graph.facebook.com/v22.0/{PHONE_NUMBER_ID}"
URL = f"{NUMBER_URL}/messages"
CHECK_URL = f"{NUMBER_URL}?fields=display_phone_number%2Cverified_name"
TOKEN = "SECRET-EAAJB-whatsapp-token"
CREDENTIALS = {"access_token": TOKEN}
SETTINGS = {"phone_number_id": PHONE_NUMBER_ID}
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(phone="+16505551234"),
    body="Your order #1234 has shipped",
)


def graph_error(
    status: int, code: int, message: str, kind: str = "OAuthException", details: str = ""
) -> Answer:
    """Meta's documented Graph API error object."""
    error: dict[str, object] = {
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return Answer(status, json={"error": error})


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "type": "text",
        "text": {"body": "Your order #1234 has shipped", "preview_url": False},
    }


#: Meta's documented codes (status as the API answers them) and the error each must become.
REFUSALS = tuple(
    Refusal(graph_error(status, code, "refused", details="refused"), expected, str(code))
    for status, code, expected in [
        (401, 0, IntegrationError),
        (401, 190, IntegrationError),
        (403, 10, IntegrationError),
        (403, 200, IntegrationError),
        (400, 100, IntegrationError),
        (400, 33, IntegrationError),
        (403, 368, IntegrationError),
        (403, 131031, IntegrationError),
        (400, 132001, IntegrationError),
        (400, 132000, IntegrationError),
        (400, 132015, IntegrationError),
        (400, 133010, IntegrationError),
        (400, 131047, RecipientError),
        (400, 131026, RecipientError),
        (400, 131030, RecipientError),
        (400, 131021, RecipientError),
        (400, 131050, RecipientError),
        (400, 4, RetryableError),
        (400, 80007, RetryableError),
        (400, 130429, RetryableError),
        (400, 131048, RetryableError),
        (400, 131056, RetryableError),
        (503, 2, RetryableError),
        (500, 131000, RetryableError),
        (503, 131016, RetryableError),
        (400, 131057, RetryableError),
    ]
)


class TestWhatsApp(ProviderContract):
    case = ProviderCase(
        provider=WhatsAppProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(
            200,
            json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
                "messages": [{"id": WAMID, "message_status": "accepted"}],
            },
        ),
        expected_message_id=WAMID,
        check_request=check_request,
        bad_credentials=graph_error(
            401, 190, "Error validating access token: Session has expired on Friday."
        ),
        invalid_recipient=graph_error(
            400, 131026, "Message Undeliverable.", details="Message Undeliverable."
        ),
        required_credential="access_token",
        rate_limited=Answer(
            400,
            json=graph_error(400, 130429, "Rate limit hit", details="Cloud API throughput").json,
            headers={"Retry-After": "7"},
        ),
        refusals=REFUSALS,
    )


def test_template_message_from_the_options() -> None:
    components = [
        {"type": "body", "parameters": [{"type": "text", "text": "1234"}]},
    ]
    message = MESSAGE.model_copy(
        update={
            "body": "",
            "options": {
                "template": {"name": "order_shipped", "language": "en_US", "components": components}
            },
        }
    )
    outcome = send(TestWhatsApp.case, TestWhatsApp.case.success, message=message)
    assert outcome.sent.provider_message_id == WAMID
    assert json.loads(outcome.request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "type": "template",
        "template": {
            "name": "order_shipped",
            "language": {"code": "en_US"},
            "components": components,
        },
    }


@pytest.mark.parametrize(
    ("template", "field"),
    [
        ("order_shipped", "options.template"),
        ({"language": "en_US"}, "options.template.name"),
        ({"name": "order_shipped"}, "options.template.language"),
        ({"name": "t", "language": "en", "components": {"a": 1}}, "options.template.components"),
    ],
)
def test_a_bad_template_option_fails_before_sending_naming_the_field(
    template: object, field: str
) -> None:
    message = MESSAGE.model_copy(update={"options": {"template": template}})
    outcome = send(TestWhatsApp.case, TestWhatsApp.case.success, message=message)
    assert type(outcome.value) is RecipientError
    assert field in str(outcome.value)
    assert outcome.requests == []


def test_outside_the_window_says_to_send_a_template() -> None:
    answer = graph_error(
        400,
        131047,
        "Re-engagement message",
        details="Message failed to send because more than 24 hours have passed since the "
        "customer last replied to this number.",
    )
    error = send(TestWhatsApp.case, answer).value
    assert type(error) is RecipientError
    assert "24 hours" in str(error)
    assert "template" in str(error)


@pytest.mark.parametrize("phone", [None, "", "6505551234", "+1650<+1651555"])
def test_bad_number_fails_before_sending(phone: str | None) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(phone=phone)})
    outcome = send(TestWhatsApp.case, TestWhatsApp.case.success, message=message)
    assert type(outcome.value) is RecipientError
    assert outcome.requests == []


def test_version_and_base_url_settings() -> None:
    url = f"https://graph.example.test/v23.0/{PHONE_NUMBER_ID}/messages"
    outcome = send(
        TestWhatsApp.case,
        TestWhatsApp.case.success,
        settings={
            **SETTINGS,
            "api_version": "v23.0",
            "base_url": "https://graph.example.test/",
            "preview_url": True,
        },
        url=url,
    )
    assert json.loads(outcome.request.content)["text"]["preview_url"] is True


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"phone_number_id": "+1650"}, "phone_number_id"),
        ({**SETTINGS, "api_version": "22"}, "api_version"),
    ],
)
def test_settings_are_validated(settings: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        WhatsAppProvider.parse_settings(settings)


def test_check_reads_the_sender_number() -> None:
    answer = Answer(
        200,
        json={
            "display_phone_number": "+1 650-555-1111",
            "verified_name": "Acme",
            "id": PHONE_NUMBER_ID,
        },
    )
    result, request = check(TestWhatsApp.case, answer, url=CHECK_URL)
    assert result.ok
    assert "Acme" in result.detail
    assert request.headers["authorization"] == f"Bearer {TOKEN}"

    result, _ = check(
        TestWhatsApp.case,
        graph_error(401, 190, "Invalid OAuth access token."),
        url=CHECK_URL,
    )
    assert not result.ok
    assert "190" in result.detail
