"""Rocket.Chat (REST API, post a message): https://developer.rocket.chat/apidocs/post-message

``POST {server}/api/v1/chat.postMessage`` with the headers ``X-Auth-Token`` (a personal access
token) and ``X-User-Id`` (its user's id) and a JSON body ``{"channel": "#general" | "@user",
"text", "alias", "emoji", "avatar", "attachments"}``, or ``{"roomId": ...}`` for a room id. The
server is the tenant's own workspace: ``base_url`` is a setting the dispatcher's URL guard
checks, and every connection goes through its guarded connector.

Where a message goes: the recipient's ``chat_id``, else the ``channel`` setting; ``#name`` is a
channel, ``@username`` a direct message, anything else a room id.

The answer is ``{"success": true, "message": {"_id", "rid", "msg", ...}}``: ``message._id`` is
the message id. Refusals (https://developer.rocket.chat/apidocs/http-response-codes): 401
``{"status": "error", "message": "You must be logged in to do this."}`` (the token or user id is
wrong), 403 (no permission), 400 ``{"success": false, "error", "errorType"}`` where
``invalid-channel``/``error-invalid-room``/``error-room-not-found`` and
``error-invalid-user`` blame whoever chose the destination and ``error-message-size-exceeded``
refuses this message (longer than the workspace's ``Message_MaxAllowedSize``, 5,000 characters
unless an admin changed it); 429 (``error-too-many-requests``: "You must wait N seconds") is
retried after ``Retry-After`` or the N it names. ``GET /api/v1/me`` checks the token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import ConfigDict, Field, SecretStr, field_validator

from providers.base import ChannelType, CheckResult, Credentials, LongBody, Message, Settings
from providers.chat_webhook import (
    BotPost,
    base_url_validator,
    chat_destination,
    compose_text,
    destination_error,
    passthrough,
    redact,
    response_detail,
)
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.http import classify_status, json_body, retry_after_header, send_request
from providers.http_provider import HttpProvider

#: ``error``/``errorType`` values saying the channel, room or user does not exist or refuses.
DESTINATION_ERRORS = frozenset(
    {
        "invalid-channel",
        "error-invalid-channel",
        "error-invalid-room",
        "error-room-not-found",
        "error-invalid-user",
        "error-room-archived",
    }
)
#: ``errorType`` values refusing this message itself, whatever the integration.
MESSAGE_ERRORS = frozenset({"error-message-size-exceeded"})
#: The code a refusal's ``error`` text ends with: ``... [error-too-many-requests]``.
_BRACKETED = re.compile(r"\[([\w.-]+)\]\s*$")
#: The wait a rate-limited answer names in its text.
_WAIT = re.compile(r"wait (\d+) seconds")

PASSTHROUGH_OPTIONS = ("alias", "emoji", "avatar", "attachments", "tmid")


class RocketChatCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: The id of the user (a bot account) the token belongs to: ``X-User-Id``.
    user_id: str = Field(min_length=1)
    #: A personal access token of that user: ``X-Auth-Token``.
    auth_token: SecretStr


class RocketChatSettings(Settings):
    #: The workspace URL, ``https://chat.example.com``.
    base_url: str
    #: ``#channel``, ``@username`` or a room id used when the recipient has no ``chat_id``.
    channel: str | None = None
    #: Display name shown instead of the user's (needs the ``message-impersonate`` permission).
    alias: str | None = None
    #: Emoji shown as the avatar (``:bell:``).
    emoji: str | None = None

    _check_base_url = field_validator("base_url")(base_url_validator("base_url"))


class RocketChatProvider(HttpProvider[RocketChatCredentials, RocketChatSettings, BotPost]):
    """Posts a message with ``chat.postMessage`` as a Rocket.Chat user."""

    name = "rocket_chat"
    display_name = "Rocket.Chat"
    channel = ChannelType.CHAT
    credentials_model = RocketChatCredentials
    settings_model = RocketChatSettings
    returns_message_id = True
    message_id_key = "message._id"
    #: The default of the workspace setting ``Message_MaxAllowedSize``.
    max_body_length = 5_000
    long_body = LongBody.REFUSE

    def build_request(
        self, message: Message, credentials: RocketChatCredentials, settings: RocketChatSettings
    ) -> BotPost:
        to, from_recipient = chat_destination(self.name, message, settings.channel, "channel")
        return BotPost(
            "POST",
            f"{settings.base_url}/api/v1/chat.postMessage",
            headers=_headers(credentials),
            json=build_payload(message, to, settings),
            from_recipient=from_recipient,
            token=credentials.auth_token,
        )

    def rejection(self, response: httpx.Response, request: BotPost) -> ProviderError | None:
        body = json_body(response)
        if response.is_success and body.get("success") is True:
            return None
        return _refusal(self.name, response, body, request)

    async def check(
        self,
        credentials: RocketChatCredentials,
        settings: RocketChatSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        url = f"{settings.base_url}/api/v1/me"
        try:
            response = await send_request(
                self.name, client, "GET", url, headers=_headers(credentials)
            )
        except ProviderError as error:
            return CheckResult(ok=False, detail=error.reason)
        body = json_body(response)
        if not response.is_success or body.get("success") is not True:
            probe = BotPost("GET", url, from_recipient=False, token=credentials.auth_token)
            return CheckResult(ok=False, detail=_refusal(self.name, response, body, probe).reason)
        return CheckResult(ok=True, detail=f"user {body.get('username')!s}")


def build_payload(message: Message, to: str, settings: RocketChatSettings) -> dict[str, Any]:
    target = {"channel": to} if to.startswith(("#", "@")) else {"roomId": to}
    payload: dict[str, Any] = {**target, "text": compose_text(message, lambda t: f"*{t}*")}
    for name in ("alias", "emoji"):
        value = getattr(settings, name)
        if value:
            payload[name] = value
    payload.update(passthrough(message.options, PASSTHROUGH_OPTIONS))
    return payload


def _headers(credentials: RocketChatCredentials) -> Mapping[str, str]:
    return {
        "X-Auth-Token": credentials.auth_token.get_secret_value(),
        "X-User-Id": credentials.user_id,
    }


def _code(body: dict[str, Any]) -> str | None:
    """``errorType``, else the code ``error`` is or ends with (``invalid-channel``)."""
    if body.get("errorType"):
        return str(body["errorType"])
    error = str(body.get("error") or "")
    if error and not any(character.isspace() for character in error):
        return error
    bracketed = _BRACKETED.search(error)
    return bracketed.group(1) if bracketed else None


def _refusal(
    provider: str, response: httpx.Response, body: dict[str, Any], request: BotPost
) -> ProviderError:
    status = response.status_code
    secret = request.token.get_secret_value()
    code = _code(body)
    explained = str(body.get("error") or body.get("message") or "")
    detail = (
        redact(explained, secrets=[secret])
        if explained
        else response_detail(response, secrets=[secret])
    )
    text = f"HTTP {status}: {detail}"
    if status == 429 or code == "error-too-many-requests":
        wait = retry_after_header(response)
        named = _WAIT.search(explained)
        if wait is None and named:
            wait = float(named.group(1))
        return RetryableError(
            provider, text, status_code=status, provider_code=code, retry_after=wait
        )
    codes = {code, str(body.get("error") or "")}
    if codes & DESTINATION_ERRORS:
        whose = "recipient's chat_id" if request.from_recipient else "channel setting"
        return destination_error(request.from_recipient)(
            provider, f"{text} ({whose})", status_code=status, provider_code=code
        )
    if codes & MESSAGE_ERRORS:
        return RecipientError(
            provider, f"{text}: message refused", status_code=status, provider_code=code
        )
    if response.is_success:
        return IntegrationError(
            provider, "Rocket.Chat answered without success: true", status_code=status
        )
    return classify_status(provider, response, message=text, provider_code=code)
