"""Slack incoming webhook: https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks

``POST https://hooks.slack.com/services/T.../B.../<token>`` with a JSON body ``{text, blocks, ...}``
and no other authentication: the URL is the credential, so it is a ``SecretStr`` and never appears
in an error. A subscriber's own incoming webhook (``message.to.webhook_url``) overrides it; it must
be an ``https`` URL on a Slack webhook host with the ``/services/...`` path, so a subscriber cannot
make the worker post anywhere else.

Slack answers ``200 ok`` on success (no message id) and a plain-text error code otherwise
(https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks):
``invalid_payload`` (400), ``action_prohibited``/``invalid_token`` (403), ``channel_not_found``/
``no_service`` (404), ``channel_is_archived`` (410), ``rollup_error`` (500), and 429 with
``Retry-After``. A webhook's channel is fixed when the webhook is created, so a webhook or channel
that is gone (403/404/410) is an integration error for the integration's own URL and a recipient
error for a subscriber's URL.
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
    compose_text,
    passthrough,
    webhook_destination,
    webhook_url_validator,
)

SLACK_WEBHOOK_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")
#: ``/services/<team id>/<bot id>/<token>``.
SLACK_WEBHOOK_PATH = re.compile(r"/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+")

#: Options a workflow step may pass through ``message.options`` (incoming webhook fields).
PASSTHROUGH_OPTIONS = (
    "attachments",
    "blocks",
    "icon_emoji",
    "icon_url",
    "mrkdwn",
    "thread_ts",
    "unfurl_links",
    "unfurl_media",
    "username",
)


class SlackWebhookCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: ``https://hooks.slack.com/services/T.../B.../...``: the URL is the secret.
    webhook_url: SecretStr

    _check_url = field_validator("webhook_url")(
        webhook_url_validator(allowed_hosts=SLACK_WEBHOOK_HOSTS)
    )


class SlackWebhookSettings(Settings):
    #: Hosts (and their subdomains) a subscriber's own webhook URL may point at.
    allowed_webhook_hosts: tuple[str, ...] = SLACK_WEBHOOK_HOSTS


class SlackWebhookProvider(ChatWebhookProvider[SlackWebhookCredentials, SlackWebhookSettings]):
    """Posts ``{"text", "blocks"}`` to an incoming webhook; Slack returns no message id."""

    name = "slack_webhook"
    display_name = "Slack (incoming webhook)"
    channel = ChannelType.CHAT
    credentials_model = SlackWebhookCredentials
    settings_model = SlackWebhookSettings
    #: Like chat.postMessage: "no more than 40,000 characters or risk truncation".
    max_body_length = 40_000
    long_body = LongBody.TRUNCATE
    #: "Incoming webhooks ... allow 1 message per second" (rate limits page).
    rate_limit_per_second = 1.0

    def build_request(
        self,
        message: Message,
        credentials: SlackWebhookCredentials,
        settings: SlackWebhookSettings,
    ) -> WebhookPost:
        destination = webhook_destination(
            self.name,
            message,
            credentials.webhook_url,
            settings.allowed_webhook_hosts,
            path=SLACK_WEBHOOK_PATH,
        )
        return WebhookPost(
            "POST", destination.url, json=build_payload(message), destination=destination
        )

    def webhook_code(self, response: httpx.Response, detail: str) -> str | None:
        # The body is a bare error code (``channel_is_archived``) or an HTML error page.
        return detail if re.fullmatch(r"[a-z_]+", detail) else None


def build_payload(message: Message) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": compose_text(message, lambda title: f"*{title}*")}
    payload.update(passthrough(message.options, PASSTHROUGH_OPTIONS))
    if not payload.get("blocks"):
        payload.pop("blocks", None)
    return payload
