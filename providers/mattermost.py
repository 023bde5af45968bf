"""Mattermost incoming webhook: https://developers.mattermost.com/integrate/webhooks/incoming/

``POST https://<server>/hooks/<generated key>`` with a JSON body ``{text, channel, username,
icon_url, icon_emoji, attachments, props}``. "Treat this endpoint as a secret": the URL is the
credential (a ``SecretStr``). A subscriber's own webhook URL must be ``https`` on the integration's
server (or one of the ``allowed_webhook_hosts``) with the ``/hooks/<key>`` path.

``channel`` overrides the webhook's channel: a channel name (``town-square``) or ``@username`` for
a direct message. It is the recipient's ``chat_id``, else the ``channel`` setting, else omitted.
Success is ``200`` with the body ``ok`` and no message id.

Errors are Mattermost app errors ``{"id", "message", "status_code"}``:
``web.incoming_webhook.invalid.app_error`` (400, the webhook was deleted) and
``web.incoming_webhook.disabled.app_error`` (501, incoming webhooks turned off) mean the webhook
cannot post; ``web.incoming_webhook.channel.app_error``/``user.app_error`` (404) mean the channel
override does not exist; ``channel_locked``/``permissions`` (403) mean the webhook may not post
there. Any of these is a recipient error when the subscriber chose the URL or channel, an
integration error when the integration did.
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
    destination_error,
    passthrough,
    response_detail,
    webhook_destination,
    webhook_url_validator,
)
from providers.errors import ProviderError
from providers.http import json_body

#: ``[/<subpath>]/hooks/<26-character key>`` (a server may live under a subpath).
MATTERMOST_WEBHOOK_PATH = re.compile(r"(/[^?#]*)?/hooks/[A-Za-z0-9]+")

#: The webhook itself cannot post (deleted, or webhooks disabled on the server).
WEBHOOK_ERRORS = frozenset(
    {
        "web.incoming_webhook.invalid.app_error",
        "web.incoming_webhook.disabled.app_error",
    }
)
#: The ``channel`` override cannot be posted to.
CHANNEL_ERRORS = frozenset(
    {
        "web.incoming_webhook.channel.app_error",
        "web.incoming_webhook.user.app_error",
        "web.incoming_webhook.channel_locked.app_error",
        "web.incoming_webhook.permissions.app_error",
    }
)

PASSTHROUGH_OPTIONS = ("attachments", "icon_emoji", "icon_url", "props", "type", "username")


class MattermostCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: ``https://<server>/hooks/<key>``: the URL is the secret.
    webhook_url: SecretStr

    _check_url = field_validator("webhook_url")(webhook_url_validator(path=MATTERMOST_WEBHOOK_PATH))


class MattermostSettings(Settings):
    #: Channel name or ``@username`` used when the recipient has no ``chat_id``; unset posts to
    #: the channel chosen when the webhook was created.
    channel: str | None = None
    #: Shown only when the server lets integrations override names and icons.
    username: str | None = None
    icon_url: str | None = None
    #: Hosts besides the integration's own server that a subscriber's webhook URL may use.
    allowed_webhook_hosts: tuple[str, ...] = ()


class MattermostProvider(ChatWebhookProvider[MattermostCredentials, MattermostSettings]):
    """Posts to a Mattermost incoming webhook."""

    name = "mattermost"
    display_name = "Mattermost (incoming webhook)"
    channel = ChannelType.CHAT
    credentials_model = MattermostCredentials
    settings_model = MattermostSettings
    #: Posts take up to 16383 characters; longer text is split into several posts.
    max_body_length = 16_383
    long_body = LongBody.SPLIT
    # Without a channel override a channel error is about the webhook's own channel.
    gone_codes = WEBHOOK_ERRORS | CHANNEL_ERRORS

    def build_request(
        self, message: Message, credentials: MattermostCredentials, settings: MattermostSettings
    ) -> WebhookPost:
        own_host = httpx.URL(credentials.webhook_url.get_secret_value()).host
        destination = webhook_destination(
            self.name,
            message,
            credentials.webhook_url,
            (own_host, *settings.allowed_webhook_hosts),
            path=MATTERMOST_WEBHOOK_PATH,
        )
        channel = message.to.chat_id or settings.channel
        return WebhookPost(
            "POST",
            destination.url,
            json=build_payload(message, settings, channel),
            destination=destination,
            channel_from_recipient=bool(message.to.chat_id) if channel else None,
        )

    def rejection(self, response: httpx.Response, request: WebhookPost) -> ProviderError | None:
        from_recipient = request.channel_from_recipient
        code = None if response.is_success else _app_error_id(response)
        if code in CHANNEL_ERRORS and from_recipient is not None:
            whose = "recipient's chat_id" if from_recipient else "channel setting"
            detail = response_detail(response, request.destination.url)
            return destination_error(from_recipient)(
                self.name,
                f"HTTP {response.status_code}: {detail} ({whose})",
                status_code=response.status_code,
                provider_code=code,
            )
        return super().rejection(response, request)

    def webhook_code(self, response: httpx.Response, detail: str) -> str | None:
        return _app_error_id(response)


def _app_error_id(response: httpx.Response) -> str | None:
    return str(json_body(response).get("id") or "") or None


def build_payload(
    message: Message, settings: MattermostSettings, channel: str | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": compose_text(message, lambda title: f"**{title}**")}
    if channel:
        payload["channel"] = channel
    if settings.username:
        payload["username"] = settings.username
    if settings.icon_url:
        payload["icon_url"] = settings.icon_url
    payload.update(passthrough(message.options, PASSTHROUGH_OPTIONS))
    return payload
