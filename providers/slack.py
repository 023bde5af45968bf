"""Slack bot (Web API chat.postMessage): https://docs.slack.dev/reference/methods/chat.postMessage

The bot token goes in an ``Authorization: Bearer xoxb-...`` header; the body is JSON
``{channel, text, blocks, ...}``. Slack answers HTTP 200 with ``{"ok": false, "error": "..."}`` for
almost every failure, so the ``error`` code is classified, not the status. Rate limiting is HTTP 429
(``"error": "ratelimited"``) with a ``Retry-After`` header.

The message id is ``"<channel id>:<ts>"``: a ``ts`` is unique only within its channel, and
``chat.update``/``chat.delete`` need both halves (split on the first ``:``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from providers.base import (
    ChannelType,
    CheckResult,
    Credentials,
    Message,
    Provider,
    SendResult,
    Settings,
)
from providers.errors import (
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import classify_status, json_body, parse_retry_after, send_request

#: ``error`` codes that say the destination channel cannot take the message.
RECIPIENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "channel_is_archived",
        "messages_tab_disabled",
        "user_not_found",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
    }
)

#: ``error`` codes for a transient condition on Slack's side.
RETRYABLE_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
    }
)

#: Optional ``chat.postMessage`` arguments a workflow step may pass through ``message.options``.
PASSTHROUGH_OPTIONS = (
    "attachments",
    "icon_emoji",
    "icon_url",
    "link_names",
    "metadata",
    "mrkdwn",
    "parse",
    "reply_broadcast",
    "thread_ts",
    "unfurl_links",
    "unfurl_media",
    "username",
)


class SlackCredentials(Credentials):
    #: A bot token (``xoxb-...``) with the ``chat:write`` scope.
    bot_token: SecretStr


class SlackSettings(Settings):
    #: Channel id (``C...``/``G...``/``D...``) used when the recipient has no ``chat_id``.
    default_channel: str | None = None
    #: Web API base; GovSlack workspaces use ``https://slack-gov.com/api``.
    base_url: str = "https://slack.com/api"


class SlackProvider(Provider[SlackCredentials, SlackSettings]):
    """Posts a message with ``chat.postMessage`` as the app's bot user."""

    name: ClassVar[str] = "slack"
    display_name: ClassVar[str] = "Slack (bot token)"
    channel: ClassVar[ChannelType] = ChannelType.CHAT
    credentials_model: ClassVar[type[Credentials]] = SlackCredentials
    settings_model: ClassVar[type[Settings]] = SlackSettings
    returns_message_id: ClassVar[bool] = True
    #: "Provide no more than 40,000 characters or risk truncation."
    max_body_length: ClassVar[int | None] = 40_000

    async def send(
        self,
        message: Message,
        credentials: SlackCredentials,
        settings: SlackSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        channel = message.to.chat_id or settings.default_channel
        if not channel:
            raise IntegrationError(
                self.name,
                "no Slack channel: set the recipient's chat_id or the default_channel setting",
            )
        response = await send_request(
            self.name,
            client,
            "POST",
            f"{settings.base_url.rstrip('/')}/chat.postMessage",
            headers=_auth(credentials),
            json=build_payload(message, channel),
        )
        body = _checked(self.name, response)
        ts = body.get("ts")
        answered_channel = body.get("channel") or channel
        message_id = f"{answered_channel}:{ts}" if ts else None
        return SendResult(provider_message_id=message_id, status_code=response.status_code)

    async def check(
        self,
        credentials: SlackCredentials,
        settings: SlackSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        try:
            response = await send_request(
                self.name,
                client,
                "POST",
                f"{settings.base_url.rstrip('/')}/auth.test",
                headers=_auth(credentials),
            )
            body = _checked(self.name, response)
        except ProviderError as error:
            return CheckResult(ok=False, detail=error.reason)
        return CheckResult(
            ok=True,
            detail=f"team {body.get('team')!s} ({body.get('team_id')!s}), "
            f"bot user {body.get('user')!s}",
        )


def build_payload(message: Message, channel: str) -> dict[str, Any]:
    """The ``chat.postMessage`` JSON body: ``text`` is always set (it is the notification text)."""
    title = message.title or message.subject
    text = f"*{title}*\n{message.body}" if title and message.body else (title or message.body)
    payload: dict[str, Any] = {"channel": channel, "text": text}
    blocks = message.options.get("blocks")
    if blocks:
        payload["blocks"] = blocks
    for option in PASSTHROUGH_OPTIONS:
        if option in message.options:
            payload[option] = message.options[option]
    return payload


def _auth(credentials: SlackCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.bot_token.get_secret_value()}"}


def _checked(provider: str, response: httpx.Response) -> dict[str, Any]:
    """The body of an ``ok: true`` answer, or the classified error."""
    body = json_body(response)
    code = str(body.get("error") or "")
    if response.status_code == 429 or code in RETRYABLE_ERRORS:
        raise RetryableError(
            provider,
            f"Slack error {code or 'ratelimited'}",
            status_code=response.status_code,
            provider_code=code or None,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if not response.is_success:
        raise classify_status(provider, response, provider_code=code or None)
    if body.get("ok") is True:
        return body
    if not code:
        raise IntegrationError(
            provider, "Slack answered without ok: true", status_code=response.status_code
        )
    error_class: type[ProviderError] = (
        RecipientError if code in RECIPIENT_ERRORS else IntegrationError
    )
    raise error_class(
        provider, f"Slack error {code}", status_code=response.status_code, provider_code=code
    )
