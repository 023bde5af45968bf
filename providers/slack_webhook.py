"""Slack incoming webhook: https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks

The webhook URL (``https://hooks.slack.com/services/T.../B.../<token>``) is the credential: whoever
holds it can post, so it is a ``SecretStr`` and never appears in an error. A subscriber's own
incoming webhook (``message.to.webhook_url``) overrides it; it must be an ``https`` URL on a Slack
webhook host, so a subscriber cannot make the worker post anywhere else.

Slack answers ``200 ok`` on success and a plain-text error code otherwise: ``invalid_payload``
(400), ``action_prohibited``/``invalid_token`` (403), ``channel_not_found``/``no_service``/
``team_disabled`` (404), ``channel_is_archived`` (410), ``rollup_error`` (500), and 429 with
``Retry-After``. A webhook that no longer exists (``no_service``, ``invalid_token``, ...) is an
integration error for the integration's own URL and a recipient error for a subscriber's URL.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from providers.base import ChannelType, Credentials, Message, Provider, SendResult, Settings
from providers.errors import IntegrationError, ProviderError, RecipientError
from providers.http import MAX_ERROR_DETAIL, classify_status, send_request

#: The destination channel is gone or refuses posts.
RECIPIENT_ERRORS = frozenset({"channel_not_found", "channel_is_archived", "user_not_found"})

#: The webhook itself is gone or refused: its owner must be fixed.
WEBHOOK_ERRORS = frozenset(
    {
        "invalid_token",
        "no_service",
        "no_service_id",
        "no_team",
        "team_disabled",
        "no_active_hooks",
        "action_prohibited",
        "posting_to_general_channel_denied",
    }
)

#: Options a workflow step may pass through ``message.options`` (incoming webhook fields).
PASSTHROUGH_OPTIONS = (
    "attachments",
    "icon_emoji",
    "icon_url",
    "mrkdwn",
    "thread_ts",
    "unfurl_links",
    "unfurl_media",
    "username",
)


class SlackWebhookCredentials(Credentials):
    #: ``https://hooks.slack.com/services/T.../B.../...``: the URL is the secret.
    webhook_url: SecretStr


class SlackWebhookSettings(Settings):
    #: Hosts (and their subdomains) a subscriber's own webhook URL may point at.
    allowed_webhook_hosts: tuple[str, ...] = ("hooks.slack.com", "hooks.slack-gov.com")


class SlackWebhookProvider(Provider[SlackWebhookCredentials, SlackWebhookSettings]):
    """Posts ``{"text", "blocks"}`` to an incoming webhook; Slack returns no message id."""

    name: ClassVar[str] = "slack_webhook"
    display_name: ClassVar[str] = "Slack (incoming webhook)"
    channel: ClassVar[ChannelType] = ChannelType.CHAT
    credentials_model: ClassVar[type[Credentials]] = SlackWebhookCredentials
    settings_model: ClassVar[type[Settings]] = SlackWebhookSettings
    max_body_length: ClassVar[int | None] = 40_000
    #: "Incoming webhooks ... allow 1 message per second" (rate limits page).
    rate_limit_per_second: ClassVar[float | None] = 1.0

    async def send(
        self,
        message: Message,
        credentials: SlackWebhookCredentials,
        settings: SlackWebhookSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        url, from_recipient = webhook_destination(
            self.name, message, credentials.webhook_url, settings.allowed_webhook_hosts
        )
        response = await send_request(self.name, client, "POST", url, json=build_payload(message))
        if response.is_success:
            return SendResult(provider_message_id=None, status_code=response.status_code)
        code = redact(response.text.strip(), url)[:MAX_ERROR_DETAIL]
        status = response.status_code
        if code in RECIPIENT_ERRORS:
            raise RecipientError(
                self.name, f"Slack webhook error {code}", status_code=status, provider_code=code
            )
        if code in WEBHOOK_ERRORS or (from_recipient and status in {401, 403, 404, 410}):
            error_class: type[ProviderError] = (
                RecipientError if from_recipient else IntegrationError
            )
            raise error_class(
                self.name,
                f"Slack webhook error {code or status}"
                + (" (subscriber's webhook)" if from_recipient else ""),
                status_code=status,
                provider_code=code or None,
            )
        raise classify_status(
            self.name,
            response,
            table={410: IntegrationError},
            message=f"HTTP {status}: {code}".strip(),
            provider_code=code or None,
        )


def build_payload(message: Message) -> dict[str, Any]:
    title = message.title or message.subject
    text = f"*{title}*\n{message.body}" if title and message.body else (title or message.body)
    payload: dict[str, Any] = {"text": text}
    blocks = message.options.get("blocks")
    if blocks:
        payload["blocks"] = blocks
    for option in PASSTHROUGH_OPTIONS:
        if option in message.options:
            payload[option] = message.options[option]
    return payload


def webhook_destination(
    provider: str, message: Message, configured: SecretStr, allowed_hosts: tuple[str, ...]
) -> tuple[str, bool]:
    """The URL to post to and whether it is the subscriber's own (not the integration's)."""
    raw = message.to.webhook_url
    if not raw:
        return configured.get_secret_value(), False
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise RecipientError(provider, "the subscriber's webhook URL is not a URL") from None
    host = url.host.lower()
    if url.scheme != "https" or not any(
        host == allowed or host.endswith(f".{allowed}") for allowed in allowed_hosts
    ):
        raise RecipientError(
            provider,
            "the subscriber's webhook URL must be https on "
            + ", ".join(allowed_hosts or ("an allowed host",)),
        )
    return raw, True


def redact(text: str, url: str) -> str:
    """``text`` without the webhook URL or any long path segment or query value of it."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        return text.replace(url, "[redacted]") if url else text
    pieces = [url, *parsed.path.split("/"), *(value for _, value in parsed.params.multi_items())]
    for piece in sorted(pieces, key=len, reverse=True):
        if len(piece) >= 8:
            text = text.replace(piece, "[redacted]")
    return text
