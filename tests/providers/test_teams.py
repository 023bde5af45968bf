import json

import httpx
import pytest

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.teams import TeamsProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, send

SIG = "SECRETworkflowsignature0123456789abcdefABCDEF"
URL = (
    "https://prod-12.westeurope.logic.azure.com/workflows/0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    f"/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun"
    f"&sv=1.0&sig={SIG}"
)
CONNECTOR = (
    "https://acme.webhook.office.com/webhookb2/11111111-2222-3333-4444-555555555555"
    "@66666666-7777-8888-9999-000000000000/IncomingWebhook/SECRETconnectorid0123456789"
    "/77777777-8888-9999-0000-111111111111/V2SECRETconnectortoken0123456789"
)

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1"),
    title="Disk almost full",
    body="db-1 is at **91%**",
)


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": "Disk almost full",
                            "weight": "Bolder",
                            "size": "Medium",
                            "wrap": True,
                        },
                        {"type": "TextBlock", "text": "db-1 is at **91%**", "wrap": True},
                    ],
                },
            }
        ],
    }


class TestTeams(ProviderContract):
    case = ProviderCase(
        provider=TeamsProvider,
        credentials={"webhook_url": URL},
        message=MESSAGE,
        method="POST",
        url=URL,
        # A Workflows webhook accepts the card and runs the flow later.
        success=Answer(202, text=""),
        expected_message_id=None,
        check_request=check_request,
        bad_credentials=Answer(
            401,
            json={
                "error": {
                    "code": "DirectApiInvalidAuthorizationSignature",
                    "message": "The provided authorization signature is not valid.",
                }
            },
        ),
        # The webhook fixes the channel; a subscriber's own webhook is tested below.
        invalid_recipient=None,
        required_credential="webhook_url",
        derived_secrets=(SIG,),
    )


def test_connector_success_body_is_1() -> None:
    outcome = send(
        TestTeams.case, Answer(200, text="1"), credentials={"webhook_url": CONNECTOR}, url=CONNECTOR
    )
    assert outcome.result is not None
    assert outcome.result.provider_message_id is None


def test_connector_throttling_inside_a_200_is_retried() -> None:
    answer = Answer(
        200,
        text="Webhook message delivery failed with error: Microsoft Teams endpoint returned "
        "HTTP error 429 with ContextId tcid=0,server=msgapi-production-eus-azsc2-4-170,"
        "cv=deadbeef.0..",
    )
    outcome = send(TestTeams.case, answer, credentials={"webhook_url": CONNECTOR}, url=CONNECTOR)
    assert isinstance(outcome.error, RetryableError)
    assert outcome.error.provider_code == "HTTP 429"


def test_connector_delivery_failure_inside_a_200_is_not_retried() -> None:
    answer = Answer(
        200,
        text="Webhook message delivery failed with error: Microsoft Teams endpoint returned "
        "HTTP error 413 with ContextId tcid=0",
    )
    outcome = send(TestTeams.case, answer, credentials={"webhook_url": CONNECTOR}, url=CONNECTOR)
    assert type(outcome.error) is IntegrationError


def test_rejected_card_is_an_integration_error() -> None:
    answer = Answer(
        400,
        json={
            "error": {
                "code": "TriggerInputSchemaMismatch",
                "message": "The input body for trigger 'manual' of type 'Request' did not match",
            }
        },
    )
    outcome = send(TestTeams.case, answer)
    assert type(outcome.error) is IntegrationError
    assert outcome.error.provider_code == "TriggerInputSchemaMismatch"


@pytest.mark.parametrize("status", [403, 404, 410])
def test_gone_subscriber_webhook_is_a_recipient_error(status: int) -> None:
    theirs = CONNECTOR.replace("acme", "their")
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=theirs)})
    outcome = send(TestTeams.case, Answer(status, text="gone"), message=message, url=theirs)
    assert type(outcome.error) is RecipientError
    assert "V2SECRET" not in str(outcome.error)
    ours = send(TestTeams.case, Answer(status, text="gone"))
    assert type(ours.error) is IntegrationError


def test_subscriber_url_off_microsoft_hosts_is_refused() -> None:
    message = MESSAGE.model_copy(
        update={"to": Recipient(webhook_url="https://hooks.evil.example/workflows/x")}
    )
    outcome = send(TestTeams.case, Answer(202), message=message)
    assert type(outcome.error) is RecipientError
    assert outcome.requests == []


def test_power_platform_webhook_host_is_allowed_for_subscribers() -> None:
    theirs = (
        "https://default0123.45.environment.api.powerplatform.com/powerautomate/automations/"
        "direct/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=SECRETsig0123456789"
    )
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=theirs)})
    outcome = send(TestTeams.case, Answer(202), message=message, url=theirs)
    assert outcome.result is not None


def test_message_card_format_for_legacy_connectors() -> None:
    outcome = send(
        TestTeams.case,
        Answer(200, text="1"),
        credentials={"webhook_url": CONNECTOR},
        settings={"card_format": "message_card", "theme_color": "0076D7"},
        url=CONNECTOR,
    )
    assert json.loads(outcome.request.content) == {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": "Disk almost full",
        "title": "Disk almost full",
        "text": "db-1 is at **91%**",
        "themeColor": "0076D7",
    }


def test_a_whole_card_and_actions_come_from_options() -> None:
    actions = [{"type": "Action.OpenUrl", "title": "Open", "url": "https://status.example"}]
    with_actions = MESSAGE.model_copy(update={"options": {"actions": actions}})
    body = json.loads(send(TestTeams.case, Answer(202), message=with_actions).request.content)
    assert body["attachments"][0]["content"]["actions"] == actions

    card = {"type": "AdaptiveCard", "version": "1.5", "body": []}
    whole = MESSAGE.model_copy(update={"options": {"card": card}})
    body = json.loads(send(TestTeams.case, Answer(202), message=whole).request.content)
    assert body["attachments"][0]["content"] == card
