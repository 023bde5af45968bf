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

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import httpx
from pydantic import ConfigDict, SecretStr, field_validator

from providers.base import ChannelType, CheckResult, Credentials, LongBody, Message, Settings
from providers.chat_webhook import (
    BotPost,
    chat_destination,
    compose_text,
    destination_error,
    passthrough,
    redact,
    response_detail,
    url_problem,
)
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.http import ErrorClass, classify_status, json_body, retry_after_header, send_request
from providers.http_provider import HttpProvider

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

#: What the ``error`` of an ``ok: false`` answer means when it names no destination problem;
#: any other code is an integration error too ("request refused").
REFUSALS: Mapping[str, tuple[ErrorClass, str]] = MappingProxyType(
    {
        **dict.fromkeys(MESSAGE_ERRORS, (RecipientError, "message refused")),
        **dict.fromkeys(AUTH_ERRORS, (IntegrationError, "the bot token was refused")),
    }
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


class SlackProvider(HttpProvider[SlackCredentials, SlackSettings, BotPost]):
    """Posts a message with ``chat.postMessage`` as the app's bot user."""

    name = "slack"
    display_name = "Slack (bot token)"
    channel = ChannelType.CHAT
    credentials_model = SlackCredentials
    settings_model = SlackSettings
    returns_message_id = True
    message_id_key = "ts"
    #: "Provide no more than 40,000 characters or risk truncation."
    max_body_length = 40_000
    long_body = LongBody.TRUNCATE

    def build_request(
        self, message: Message, credentials: SlackCredentials, settings: SlackSettings
    ) -> BotPost:
        channel, from_recipient = chat_destination(
            self.name, message, settings.default_channel, "default_channel"
        )
        return BotPost(
            "POST",
            f"{settings.base_url}/chat.postMessage",
            headers=_headers(credentials),
            json=build_payload(message, channel),
            from_recipient=from_recipient,
            token=credentials.bot_token,
        )

    def rejection(self, response: httpx.Response, request: BotPost) -> ProviderError | None:
        return _refusal(self.name, response, request.token, from_recipient=request.from_recipient)

    async def check(
        self,
        credentials: SlackCredentials,
        settings: SlackSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        try:
            url = f"{settings.base_url}/auth.test"
            response = await send_request(
                self.name, client, "POST", url, headers=_headers(credentials)
            )
        except ProviderError as error:
            return CheckResult(ok=False, detail=error.reason)
        refusal = _refusal(self.name, response, credentials.bot_token, from_recipient=False)
        if refusal is not None:
            return CheckResult(ok=False, detail=refusal.reason)
        body = json_body(response)
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


def _refusal(
    provider: str,
    response: httpx.Response,
    bot_token: SecretStr,
    *,
    from_recipient: bool,
) -> ProviderError | None:
    """The classified error of an answer, ``None`` for an ``ok: true`` one."""
    body = json_body(response)
    token = bot_token.get_secret_value()
    code = redact(str(body.get("error") or ""), secrets=[token])
    status = response.status_code
    if status == 429 or code in RETRYABLE_ERRORS:
        return RetryableError(
            provider,
            f"Slack error {code or 'ratelimited'}",
            status_code=status,
            provider_code=code or None,
            retry_after=retry_after_header(response),
        )
    if not response.is_success:
        detail = code or response_detail(response, secrets=[token])
        return classify_status(
            provider, response, message=f"HTTP {status}: {detail}", provider_code=code or None
        )
    if body.get("ok") is True:
        return None
    if not code:
        return IntegrationError(provider, "Slack answered without ok: true", status_code=status)
    if code in DESTINATION_ERRORS:
        whose = "recipient's chat_id" if from_recipient else "default_channel setting"
        return destination_error(from_recipient)(
            provider, f"Slack error {code} ({whose})", status_code=status, provider_code=code
        )
    error_class, reason = REFUSALS.get(code, (IntegrationError, "request refused"))
    return error_class(
        provider, f"Slack error {code}: {reason}", status_code=status, provider_code=code
    )
