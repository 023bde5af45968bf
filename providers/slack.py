"""Slack bot (Web API chat.postMessage): https://docs.slack.dev/reference/methods/chat.postMessage

``POST https://slack.com/api/chat.postMessage`` with ``Authorization: Bearer xoxb-...`` and a JSON
body ``{channel, text, blocks, ...}`` (``Content-type: application/json; charset=utf-8``). Slack
answers HTTP 200 with ``{"ok": false, "error": "<code>"}`` for almost every failure, so the
``error`` code is classified, not the status:

* ``invalid_auth``, ``not_authed``, ``account_inactive``, ``token_revoked``, ``missing_scope``...:
  the integration's token is wrong;
* ``channel_not_found``, ``not_in_channel``, ``is_archived``...: the destination refuses the post,
  a recipient error when the channel was the subscriber's ``chat_id`` and an integration error
  when it was the integration's ``default_channel``;
* ``msg_too_long``, ``too_many_attachments``: this message cannot be posted, whatever the
  integration: a recipient error (permanent for the message), so it burns no fallback;
* HTTP 429 (``"error": "ratelimited"``) with a ``Retry-After`` header, ``internal_error`` and
  ``fatal_error``: retried.

The answer's ``ts`` is the message id (unique within its channel; ``chat.update`` and
``chat.delete`` take it with the channel id). ``auth.test``
(https://docs.slack.dev/reference/methods/auth.test) checks the token without posting anything.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import ConfigDict, SecretStr, field_validator

from providers.base import (
    ChannelType,
    CheckResult,
    Credentials,
    Message,
    Provider,
    SendResult,
    Settings,
)
from providers.chat_webhook import (
    chat_destination,
    compose_text,
    destination_error,
    passthrough,
    redact,
    response_detail,
    url_problem,
)
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.http import classify_status, json_body, parse_retry_after, send_request

#: ``error`` codes that say the destination channel or user cannot take the message.
DESTINATION_ERRORS = frozenset(
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

#: ``error`` codes that refuse this message itself: no other integration would post it either.
MESSAGE_ERRORS = frozenset({"msg_too_long", "too_many_attachments"})

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

#: ``error`` codes saying the token itself is refused (any other unknown code is also an
#: integration error; this set only names the documented authentication failures).
AUTH_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "ekm_access_denied",
    }
)

#: Optional ``chat.postMessage`` arguments a workflow step may pass through ``message.options``.
PASSTHROUGH_OPTIONS = (
    "attachments",
    "blocks",
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

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class SlackCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: A bot token (``xoxb-...``) with the ``chat:write`` scope.
    bot_token: SecretStr


class SlackSettings(Settings):
    #: Channel id (``C...``/``G...``/``D...``) used when the recipient has no ``chat_id``.
    default_channel: str | None = None
    #: Web API base; GovSlack workspaces use ``https://slack-gov.com/api``.
    base_url: str = "https://slack.com/api"

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise ValueError(f"base_url {problem}")
        return value.rstrip("/")


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
        channel, from_recipient = chat_destination(
            self.name, message, settings.default_channel, "default_channel"
        )
        response = await send_request(
            self.name,
            client,
            "POST",
            f"{settings.base_url}/chat.postMessage",
            headers=_headers(credentials),
            json=build_payload(message, channel),
        )
        body = _checked(self.name, response, credentials, from_recipient=from_recipient)
        ts = body.get("ts")
        return SendResult(
            provider_message_id=str(ts) if ts else None, status_code=response.status_code
        )

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
                f"{settings.base_url}/auth.test",
                headers=_headers(credentials),
            )
            body = _checked(self.name, response, credentials, from_recipient=False)
        except ProviderError as error:
            return CheckResult(ok=False, detail=error.reason)
        return CheckResult(
            ok=True,
            detail=f"team {body.get('team')!s} ({body.get('team_id')!s}), "
            f"bot user {body.get('user')!s}",
        )


def build_payload(message: Message, channel: str) -> dict[str, Any]:
    """The ``chat.postMessage`` JSON body; ``text`` is always set (it is the notification text
    and the fallback of ``blocks``)."""
    payload: dict[str, Any] = {
        "channel": channel,
        "text": compose_text(message, lambda title: f"*{title}*"),
    }
    payload.update(passthrough(message.options, PASSTHROUGH_OPTIONS))
    if not payload.get("blocks"):
        payload.pop("blocks", None)
    return payload


def _headers(credentials: SlackCredentials) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {credentials.bot_token.get_secret_value()}",
        "Content-Type": JSON_CONTENT_TYPE,
    }


def _checked(
    provider: str,
    response: httpx.Response,
    credentials: SlackCredentials,
    *,
    from_recipient: bool,
) -> dict[str, Any]:
    """The body of an ``ok: true`` answer, or the classified error."""
    body = json_body(response)
    code = redact(str(body.get("error") or ""), secrets=[credentials.bot_token.get_secret_value()])
    status = response.status_code
    if status == 429 or code in RETRYABLE_ERRORS:
        raise RetryableError(
            provider,
            f"Slack error {code or 'ratelimited'}",
            status_code=status,
            provider_code=code or None,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if not response.is_success:
        detail = code or response_detail(
            response, secrets=[credentials.bot_token.get_secret_value()]
        )
        raise classify_status(
            provider, response, message=f"HTTP {status}: {detail}", provider_code=code or None
        )
    if body.get("ok") is True:
        return body
    if not code:
        raise IntegrationError(provider, "Slack answered without ok: true", status_code=status)
    if code in DESTINATION_ERRORS:
        whose = "recipient's chat_id" if from_recipient else "default_channel setting"
        raise destination_error(from_recipient)(
            provider, f"Slack error {code} ({whose})", status_code=status, provider_code=code
        )
    if code in MESSAGE_ERRORS:
        raise RecipientError(
            provider, f"Slack error {code}: message refused", status_code=status, provider_code=code
        )
    reason = "the bot token was refused" if code in AUTH_ERRORS else "request refused"
    raise IntegrationError(
        provider, f"Slack error {code}: {reason}", status_code=status, provider_code=code
    )
