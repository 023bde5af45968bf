"""Microsoft Teams incoming webhook (Workflows or legacy connector):
https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using

Two kinds of URL post a card into a channel, and both are the credential (a ``SecretStr``):

* a Workflows webhook ("When a Teams webhook request is received", on ``*.logic.azure.com`` or
  ``*.api.powerplatform.com``), which takes Adaptive Cards only and answers ``202 Accepted``;
* a legacy Microsoft 365 connector webhook (``*.webhook.office.com``), which also takes the older
  ``MessageCard`` and answers ``200`` with the body ``1``.

The body is a ``message`` whose ``attachments`` hold one card of content type
``application/vnd.microsoft.card.adaptive``, or a ``MessageCard`` when the ``card_format`` setting
asks for it. Neither kind returns a message id.

Connectors do not throw 429s: a throttled post answers ``200`` with ``Microsoft Teams endpoint
returned HTTP error 429`` in the body, which is retried like a real 429 (the connector limits are
4 requests per second per webhook). 401/403/404/410 mean the webhook or flow is gone or refuses
us: an integration error for the integration's URL, a recipient error for a subscriber's URL.
Workflows errors carry ``{"error": {"code", "message"}}``; 400 is a rejected card (integration).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx
from pydantic import ConfigDict, SecretStr, field_validator

from providers.base import ChannelType, Credentials, Message, Settings
from providers.chat_webhook import (
    GONE_STATUSES,
    ChatWebhookProvider,
    Destination,
    WebhookPost,
    destination_error,
    heading,
    response_detail,
    webhook_destination,
    webhook_url_validator,
)
from providers.errors import IntegrationError, ProviderError, RetryableError
from providers.http import json_body, retry_after_header

#: Hosts of Teams incoming webhooks: legacy connectors, Logic Apps and Power Automate flows.
TEAMS_WEBHOOK_HOSTS = (
    "webhook.office.com",
    "outlook.office.com",
    "outlook.office365.com",
    "logic.azure.com",
    "api.powerplatform.com",
)

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
#: Teams renders Adaptive Cards up to 1.5 on desktop; 1.4 also renders on mobile.
ADAPTIVE_CARD_VERSION = "1.4"

#: A connector's throttling (or other delivery failure) reported inside a 200 body.
_EMBEDDED_STATUS = re.compile(r"returned HTTP error (\d{3})")


class TeamsCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: The Workflows or connector webhook URL: the URL is the secret.
    webhook_url: SecretStr

    # Any https host: sovereign clouds use their own; subscriber URLs are held to the settings.
    _check_url = field_validator("webhook_url")(webhook_url_validator())


class TeamsSettings(Settings):
    #: ``adaptive`` (Workflows and connectors) or ``message_card`` (legacy connectors only).
    card_format: Literal["adaptive", "message_card"] = "adaptive"
    #: ``MessageCard`` accent colour, hex without ``#``.
    theme_color: str | None = None
    #: Hosts (and their subdomains) a subscriber's own webhook URL may point at.
    allowed_webhook_hosts: tuple[str, ...] = TEAMS_WEBHOOK_HOSTS


class TeamsProvider(ChatWebhookProvider[TeamsCredentials, TeamsSettings]):
    """Posts one card to a Teams Workflows or connector webhook."""

    name = "teams"
    display_name = "Microsoft Teams (webhook)"
    channel = ChannelType.CHAT
    credentials_model = TeamsCredentials
    settings_model = TeamsSettings
    #: Connector webhooks: at most 4 requests per second.
    rate_limit_per_second = 4.0

    def build_request(
        self, message: Message, credentials: TeamsCredentials, settings: TeamsSettings
    ) -> WebhookPost:
        destination = webhook_destination(
            self.name, message, credentials.webhook_url, settings.allowed_webhook_hosts
        )
        return WebhookPost(
            "POST",
            destination.url,
            json=build_payload(message, settings),
            destination=destination,
        )

    def rejection(self, response: httpx.Response, request: WebhookPost) -> ProviderError | None:
        embedded = _EMBEDDED_STATUS.search(response.text) if response.is_success else None
        if embedded:
            status = int(embedded.group(1))
            return _embedded_failure(self.name, response, status, request.destination)
        return super().rejection(response, request)

    def webhook_code(self, response: httpx.Response, detail: str) -> str | None:
        error = json_body(response).get("error")
        code = error.get("code") if isinstance(error, dict) else None
        return str(code) if code else None


def build_payload(message: Message, settings: TeamsSettings) -> dict[str, Any]:
    if settings.card_format == "message_card":
        return message_card(message, settings)
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


def adaptive_card(message: Message) -> dict[str, Any]:
    """A card with the heading in bold and the body; ``options["card"]`` replaces it whole and
    ``options["actions"]`` adds ``Action.OpenUrl``-style buttons."""
    card = message.options.get("card")
    if isinstance(card, dict):
        return card
    body: list[dict[str, Any]] = []
    title = heading(message)
    if title:
        body.append(
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True}
        )
    if message.body:
        body.append({"type": "TextBlock", "text": message.body, "wrap": True})
    content: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    actions = message.options.get("actions")
    if actions:
        content["actions"] = actions
    return content


def message_card(message: Message, settings: TeamsSettings) -> dict[str, Any]:
    """A legacy connector ``MessageCard``; ``summary`` (or ``text``) is required."""
    title = heading(message)
    card: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": (title or message.body)[:100] or "Notification",
        "text": message.body or title or "",
    }
    if title and message.body:
        card["title"] = title
    if settings.theme_color:
        card["themeColor"] = settings.theme_color
    for option in ("sections", "potentialAction"):
        if option in message.options:
            card[option] = message.options[option]
    return card


def _embedded_failure(
    provider: str, response: httpx.Response, status: int, destination: Destination
) -> ProviderError:
    """A connector's ``200`` whose body reports that delivery to Teams failed with ``status``."""
    text = f"Teams delivery failed: {response_detail(response, destination.url)}"
    code = f"HTTP {status}"
    if status == 429 or status >= 500:
        return RetryableError(
            provider,
            text,
            status_code=response.status_code,
            provider_code=code,
            retry_after=retry_after_header(response),
        )
    error_class = (
        destination_error(destination.from_recipient)
        if status in GONE_STATUSES
        else IntegrationError
    )
    return error_class(provider, text, status_code=response.status_code, provider_code=code)
