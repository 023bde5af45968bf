"""Microsoft Teams through a Workflows webhook, against Microsoft's documentation:
"Create and send messages" (Teams platform docs, webhooks-and-connectors/how-to/connectors-using,
as published in 2025: connectors retiring, Workflows take Adaptive Cards only) and "Post a workflow
when a webhook request is received in Microsoft Teams" (the trigger's request shape); refusals in
the Logic Apps error shape ``{"error": {"code", "message"}}``."""

import json

import httpx
import pytest
from pydantic import ValidationError

from providers.base import ChannelType, Message, Recipient
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.teams_workflows import TeamsWorkflowsProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract, Refusal, send

SIG = "SECRETworkflowsignature0123456789abcdefABCDEF"
URL = (
    "https://prod-12.westeurope.logic.azure.com/workflows/0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    "/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun"
    f"&sv=1.0&sig={SIG}"
)
THEIRS = (
    "https://default0123.45.environment.api.powerplatform.com/powerautomate/automations/"
    "direct/workflows/abc123/triggers/manual/paths/invoke?api-version=1&sig=SECRETtheirsig0123456"
)
CONNECTOR = (
    "https://acme.webhook.office.com/webhookb2/11111111-2222-3333-4444-555555555555"
    "@66666666-7777-8888-9999-000000000000/IncomingWebhook/SECRETconnectorid0123456789"
)
CREDENTIALS = {"webhook_url": URL}

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.CHAT,
    to=Recipient(subscriber_id="s-1"),
    title="Disk almost full",
    body="db-1 is at **91%**",
)


def logic_apps_error(status: int, code: str, text: str) -> Answer:
    return Answer(status, json={"error": {"code": code, "message": text}})


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


BAD_SIGNATURE = logic_apps_error(
    401,
    "DirectApiInvalidAuthorizationSignature",
    "The provided authorization signature is not valid.",
)


class TestTeamsWorkflows(ProviderContract):
    case = ProviderCase(
        provider=TeamsWorkflowsProvider,
        credentials=CREDENTIALS,
        message=MESSAGE,
        method="POST",
        url=URL,
        # The flow accepts the request and runs later.
        success=Answer(202, text=""),
        expected_message_id=None,
        check_request=check_request,
        bad_credentials=BAD_SIGNATURE,
        # The flow fixes the channel; a subscriber's own workflow URL is tested below.
        invalid_recipient=None,
        required_credential="webhook_url",
        derived_secrets=(SIG,),
        refusals=(
            Refusal(BAD_SIGNATURE, IntegrationError, "DirectApiInvalidAuthorizationSignature"),
            Refusal(
                logic_apps_error(404, "WorkflowNotFound", "The workflow could not be found."),
                IntegrationError,
                "WorkflowNotFound",
            ),
            Refusal(
                logic_apps_error(
                    409, "WorkflowTriggerIsNotEnabled", "The workflow 'x' is disabled."
                ),
                IntegrationError,
                "WorkflowTriggerIsNotEnabled",
            ),
            Refusal(
                logic_apps_error(
                    400,
                    "TriggerInputSchemaMismatch",
                    "The input body for trigger 'manual' of type 'Request' did not match its "
                    "schema definition.",
                ),
                IntegrationError,
                "TriggerInputSchemaMismatch",
            ),
            Refusal(
                Answer(
                    429,
                    json={"error": {"code": "WorkflowRequestsThrottled", "message": "slow"}},
                    headers={"Retry-After": "30"},
                ),
                RetryableError,
            ),
        ),
    )


def test_a_subscribers_own_workflow_is_used_and_its_failures_are_theirs() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=THEIRS)})
    outcome = send(TestTeamsWorkflows.case, Answer(202), message=message, url=THEIRS)
    assert outcome.result is not None
    gone = send(
        TestTeamsWorkflows.case,
        logic_apps_error(404, "WorkflowNotFound", "The workflow could not be found."),
        message=message,
        url=THEIRS,
    )
    assert type(gone.error) is RecipientError
    assert "SECRETtheirsig" not in str(gone.error)


@pytest.mark.parametrize(
    "theirs",
    [
        "https://hooks.evil.example/workflows/x/triggers/manual/paths/invoke?sig=abc",
        "https://prod-1.westeurope.logic.azure.com/somewhere/else",
        "http://prod-1.westeurope.logic.azure.com/workflows/x/triggers/manual/paths/invoke",
    ],
)
def test_a_subscriber_url_off_workflow_triggers_is_refused_unsent(theirs: str) -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=theirs)})
    outcome = send(TestTeamsWorkflows.case, Answer(202), message=message)
    assert type(outcome.error) is RecipientError
    assert outcome.requests == []


def test_a_connector_url_is_refused_with_the_retirement_named() -> None:
    with pytest.raises(ValidationError) as caught:
        TeamsWorkflowsProvider.parse_credentials({"webhook_url": CONNECTOR})
    assert "retiring" in str(caught.value)
    assert "SECRETconnector" not in str(caught.value)
    message = MESSAGE.model_copy(update={"to": Recipient(webhook_url=CONNECTOR)})
    outcome = send(TestTeamsWorkflows.case, Answer(202), message=message)
    assert type(outcome.error) is RecipientError
    assert "retiring" in outcome.error.reason
    assert outcome.requests == []


def test_a_sovereign_cloud_url_is_accepted_for_the_integration() -> None:
    url = (
        "https://prod-01.usgovtexas.logic.azure.us/workflows/abc/triggers/manual/paths/invoke?sig=x"
    )
    outcome = send(TestTeamsWorkflows.case, Answer(202), credentials={"webhook_url": url}, url=url)
    assert outcome.result is not None


def test_a_whole_card_and_actions_come_from_options() -> None:
    actions = [{"type": "Action.OpenUrl", "title": "Open", "url": "https://status.example"}]
    with_actions = MESSAGE.model_copy(update={"options": {"actions": actions}})
    body = json.loads(
        send(TestTeamsWorkflows.case, Answer(202), message=with_actions).request.content
    )
    assert body["attachments"][0]["content"]["actions"] == actions
    card = {"type": "AdaptiveCard", "version": "1.5", "body": []}
    whole = MESSAGE.model_copy(update={"options": {"card": card}})
    body = json.loads(send(TestTeamsWorkflows.case, Answer(202), message=whole).request.content)
    assert body["attachments"][0]["content"] == card
