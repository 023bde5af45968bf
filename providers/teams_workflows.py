"""Microsoft Teams through Workflows (Power Automate):
https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using

Microsoft 365 (formerly Office 365) connectors, and with them the ``*.webhook.office.com``
incoming webhooks, are being retired: new ones can no longer be created, and Microsoft points
webhook senders at the Workflows app instead. A workflow built on the trigger "When a Teams
webhook request is received" (Power Automate, or a Logic App) gets an HTTP URL; a ``POST`` of a
``message`` holding one Adaptive Card runs the flow, which posts the card to the channel or chat
it was set up for::

    {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                         "contentUrl": null, "content": {AdaptiveCard 1.4}}]}

This provider speaks only that: Adaptive Cards (Workflows take no ``MessageCard``), URLs of a
workflow trigger (``.../workflows/<id>/triggers/<name>/paths/invoke?...&sig=<signature>``) on
Logic Apps (``*.logic.azure.com``) or Power Platform (``*.api.powerplatform.com``). The
``teams`` provider still serves legacy connector URLs while they work; a connector URL given
here is refused with that advice. Only a trigger that "Anyone" may call works: one limited to
users of the tenant wants a Microsoft Entra token, which a webhook sender does not have.

The URL is the credential (its ``sig`` query value signs it) and the tenant chooses it: it is a
``SecretStr``, and every connection to it goes through the dispatcher's guarded connector like
any tenant URL. A subscriber may bring their own workflow URL (``to.webhook_url``), held to
``allowed_webhook_hosts`` and the trigger path, and never quoted in an error.

A flow accepts the request and runs later: the answer is ``202 Accepted`` with no body and no
message id; whether the card reached Teams is only visible in the flow's run history. Refusals
are Logic Apps errors ``{"error": {"code", "message"}}``: ``DirectApiInvalidAuthorizationSignature``
and ``DirectApiAuthorizationRequired`` (401), ``WorkflowNotFound`` (404) and
``WorkflowTriggerIsNotEnabled`` (the flow is turned off) mean the URL can no longer post:
an integration error for the integration's URL, a recipient error for a subscriber's own.
``TriggerInputSchemaMismatch`` (400) is a card the flow's schema refuses (integration); 429
(the flow's throttling) and 5xx are retried with their ``Retry-After``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import ConfigDict, SecretStr, field_validator

from providers.base import ChannelType, Credentials, LongBody, Message, Settings
from providers.chat_webhook import (
    ChatWebhookProvider,
    WebhookPost,
    host_allowed,
    url_problem,
    webhook_destination,
)
from providers.errors import RecipientError
from providers.http import json_body
from providers.teams import ADAPTIVE_CARD_CONTENT_TYPE, adaptive_card

#: Hosts of workflow trigger URLs: Logic Apps and Power Platform environments (sovereign clouds
#: use their own, which a tenant adds to ``allowed_webhook_hosts``).
WORKFLOWS_HOSTS = ("logic.azure.com", "api.powerplatform.com")

#: Hosts of the retired Microsoft 365 connector webhooks, refused with advice.
CONNECTOR_HOSTS = ("webhook.office.com", "outlook.office.com", "outlook.office365.com")

#: ``[/<prefix>]/workflows/<id>/triggers/<trigger>/paths/invoke``: Power Platform URLs put
#: ``/powerautomate/automations/direct`` before it.
WORKFLOW_TRIGGER_PATH = re.compile(r"(/[^?#]*)?/workflows/[^/?#]+/triggers/[^/?#]+/paths/invoke/?")

#: Error codes saying the URL can no longer run the flow, whatever the status.
GONE_CODES = frozenset(
    {
        "DirectApiInvalidAuthorizationSignature",
        "DirectApiAuthorizationRequired",
        "WorkflowNotFound",
        "WorkflowTriggerNotFound",
        "WorkflowTriggerIsNotEnabled",
        "WorkflowDisabled",
    }
)


def workflow_url_problem(raw: str, allowed_hosts: tuple[str, ...] | None = None) -> str | None:
    """Why ``raw`` is not a workflow trigger URL (never quoting it), or ``None``."""
    try:
        host = httpx.URL(raw).host
    except (httpx.InvalidURL, ValueError, TypeError):
        return "is not a URL"
    if host_allowed(host, CONNECTOR_HOSTS):
        return (
            "is a Microsoft 365 connector webhook, which Microsoft is retiring: create a "
            "Workflows webhook ('When a Teams webhook request is received') or use the "
            "teams provider"
        )
    return url_problem(raw, allowed_hosts=allowed_hosts, path=WORKFLOW_TRIGGER_PATH)


def _check_workflow_url(value: SecretStr) -> SecretStr:
    problem = workflow_url_problem(value.get_secret_value())
    if problem:
        raise ValueError(f"the webhook URL {problem}")
    return value


class TeamsWorkflowsCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: The workflow's HTTP URL ("When a Teams webhook request is received"): the URL is the
    #: secret. Any https host, as sovereign clouds have their own.
    webhook_url: SecretStr

    _check_url = field_validator("webhook_url")(_check_workflow_url)


class TeamsWorkflowsSettings(Settings):
    #: Hosts (and their subdomains) a subscriber's own workflow URL may point at.
    allowed_webhook_hosts: tuple[str, ...] = WORKFLOWS_HOSTS


class TeamsWorkflowsProvider(
    ChatWebhookProvider[TeamsWorkflowsCredentials, TeamsWorkflowsSettings]
):
    """Posts one Adaptive Card to a Teams Workflows webhook."""

    name = "teams_workflows"
    display_name = "Microsoft Teams (Workflows)"
    channel = ChannelType.CHAT
    credentials_model = TeamsWorkflowsCredentials
    settings_model = TeamsWorkflowsSettings
    #: Teams refuses a message over about 28 KB, card markup included: the body is held well
    #: under it (a longer one goes to the next integration, or fails).
    max_body_length = 20_000
    long_body = LongBody.REFUSE
    gone_codes = GONE_CODES

    def build_request(
        self,
        message: Message,
        credentials: TeamsWorkflowsCredentials,
        settings: TeamsWorkflowsSettings,
    ) -> WebhookPost:
        theirs = message.to.webhook_url
        if theirs:
            # The connector advice first: the shared check would only say "not on these hosts".
            problem = workflow_url_problem(theirs, settings.allowed_webhook_hosts)
            if problem:
                raise RecipientError(self.name, f"the subscriber's webhook URL {problem}")
        destination = webhook_destination(
            self.name,
            message,
            credentials.webhook_url,
            settings.allowed_webhook_hosts,
            path=WORKFLOW_TRIGGER_PATH,
        )
        return WebhookPost(
            "POST", destination.url, json=build_payload(message), destination=destination
        )

    def webhook_code(self, response: httpx.Response, detail: str) -> str | None:
        error = json_body(response).get("error")
        code = error.get("code") if isinstance(error, dict) else None
        return str(code) if code else None


def build_payload(message: Message) -> dict[str, Any]:
    """The ``message`` with one Adaptive Card (:func:`providers.teams.adaptive_card`: the
    heading in bold, the body, ``options["actions"]``; ``options["card"]`` replaces it)."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": ADAPTIVE_CARD_CONTENT_TYPE,
                "contentUrl": None,
                "content": adaptive_card(message),
            }
        ],
    }
