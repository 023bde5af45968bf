"""Zulip (REST API, send a message): https://zulip.com/api/send-message

``POST {site}/api/v1/messages`` with HTTP basic auth ``<bot email>:<API key>`` and a form body:
``type=stream&to=<channel name>&topic=<topic>&content=<Markdown>`` for a channel message, or
``type=private&to=<JSON list of emails or user ids>&content=...`` for a direct message (Zulip
now also spells them ``channel`` and ``direct``; the old names stay accepted on every server).
The site is the organisation's own (``https://<org>.zulipchat.com`` or a self-hosted server):
the tenant chooses it, so ``base_url`` is a setting the dispatcher's URL guard checks.

Where a message goes: the recipient's ``chat_id``, else the ``stream`` setting:

* ``@<email>`` or ``@<user id>``: a direct message to that user;
* ``<channel>`` or ``<channel>><topic>`` (Zulip's own ``#**channel>topic**`` spelling): a
  channel message, in that topic, else the ``topic`` setting, else the message's heading, else
  ``notifications``; topics longer than 60 characters are cut (Zulip's limit).

The answer is ``{"result": "success", "id": <message id>}``. Refusals are ``{"result":
"error", "code", "msg"}``: ``STREAM_DOES_NOT_EXIST``, and a ``BAD_REQUEST`` whose ``msg`` names
an invalid user (``Invalid email ...``, ``Invalid user ID ...``), are the destination's fault
(the recipient's when it was their ``chat_id``, the integration's when it was the ``stream``
setting); ``INVALID_API_KEY``, ``UNAUTHORIZED``, ``USER_DEACTIVATED``, ``REALM_DEACTIVATED``
and any other 4xx mean the integration must be fixed; ``RATE_LIMIT_HIT`` (429) is retried after
its ``retry-after`` (a body field in seconds, also sent as the ``Retry-After`` header).
Content over 10,000 characters is truncated by the server. ``GET /api/v1/users/me`` checks the
key (https://zulip.com/api/get-own-user).
"""

from __future__ import annotations

import json
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
    heading,
    redact,
    response_detail,
    seconds,
)
from providers.errors import IntegrationError, ProviderError, RetryableError
from providers.http import classify_status, json_body, retry_after_header, send_request
from providers.http_provider import HttpProvider

#: Zulip's limits: longer content is truncated by the server, longer topics refused or cut.
MAX_CONTENT = 10_000
MAX_TOPIC = 60
DEFAULT_TOPIC = "notifications"

#: ``code``s saying the bot's credentials or organisation cannot post at all.
AUTH_CODES = frozenset(
    {
        "INVALID_API_KEY",
        "UNAUTHORIZED",
        "UNAUTHENTICATED_USER",
        "AUTHENTICATION_FAILED",
        "USER_DEACTIVATED",
        "REALM_DEACTIVATED",
        "NONEXISTENT_SUBDOMAIN",
    }
)
#: ``msg`` openings of a ``BAD_REQUEST`` that names a direct message's recipient.
INVALID_USER_MESSAGES = ("Invalid email", "Invalid user ID", "Invalid user id")


class ZulipCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: The bot's email address (Settings > Personal > Bots), the basic-auth user name.
    email: str = Field(min_length=3)
    #: The bot's API key.
    api_key: SecretStr


class ZulipSettings(Settings):
    #: The organisation's URL: ``https://<org>.zulipchat.com`` or a self-hosted server.
    base_url: str
    #: Channel (stream) name used when the recipient has no ``chat_id``.
    stream: str | None = None
    #: Topic of channel messages whose destination names none.
    topic: str | None = Field(default=None, max_length=MAX_TOPIC)

    _check_base_url = field_validator("base_url")(base_url_validator("base_url"))


class ZulipProvider(HttpProvider[ZulipCredentials, ZulipSettings, BotPost]):
    """Sends a channel or direct message as a Zulip bot."""

    name = "zulip"
    display_name = "Zulip"
    channel = ChannelType.CHAT
    credentials_model = ZulipCredentials
    settings_model = ZulipSettings
    returns_message_id = True
    message_id_key = "id"
    max_body_length = MAX_CONTENT
    long_body = LongBody.TRUNCATE

    def build_request(
        self, message: Message, credentials: ZulipCredentials, settings: ZulipSettings
    ) -> BotPost:
        to, from_recipient = chat_destination(self.name, message, settings.stream, "stream")
        return BotPost(
            "POST",
            f"{settings.base_url}/api/v1/messages",
            data=form(message, to, settings),
            auth=_auth(credentials),
            from_recipient=from_recipient,
            token=credentials.api_key,
        )

    def rejection(self, response: httpx.Response, request: BotPost) -> ProviderError | None:
        body = json_body(response)
        if response.is_success and body.get("result") == "success":
            return None
        return _refusal(self.name, response, body, request)

    async def check(
        self, credentials: ZulipCredentials, settings: ZulipSettings, client: httpx.AsyncClient
    ) -> CheckResult | None:
        url = f"{settings.base_url}/api/v1/users/me"
        try:
            response = await send_request(self.name, client, "GET", url, auth=_auth(credentials))
        except ProviderError as error:
            return CheckResult(ok=False, detail=error.reason)
        body = json_body(response)
        if not response.is_success or body.get("result") != "success":
            probe = BotPost("GET", url, from_recipient=False, token=credentials.api_key)
            return CheckResult(ok=False, detail=_refusal(self.name, response, body, probe).reason)
        return CheckResult(
            ok=True, detail=f"bot {body.get('full_name')!s} (user id {body.get('user_id')!s})"
        )


def form(message: Message, to: str, settings: ZulipSettings) -> dict[str, str]:
    """The form body for destination ``to`` (see the module doc for its forms)."""
    text = compose_text(message, lambda title: f"**{title}**")
    if to.startswith("@"):
        user = to[1:]
        recipient: str | int = int(user) if user.isdigit() else user
        return {"type": "private", "to": json.dumps([recipient]), "content": text}
    stream, _, topic = to.partition(">")
    topic = topic or settings.topic or ""
    if not topic:
        # No topic chosen: the heading becomes the topic rather than a bold first line.
        topic = heading(message) or DEFAULT_TOPIC
        text = message.body or text
    return {"type": "stream", "to": stream, "topic": topic[:MAX_TOPIC], "content": text}


def _auth(credentials: ZulipCredentials) -> tuple[str, str]:
    return (credentials.email, credentials.api_key.get_secret_value())


def _refusal(
    provider: str, response: httpx.Response, body: dict[str, Any], request: BotPost
) -> ProviderError:
    status = response.status_code
    secret = request.token.get_secret_value()
    code = str(body.get("code") or "") or None
    msg = str(body.get("msg") or "")
    detail = redact(msg, secrets=[secret]) if msg else response_detail(response, secrets=[secret])
    text = f"HTTP {status}: {detail}"
    if code == "RATE_LIMIT_HIT" or status == 429:
        wait = seconds(body.get("retry-after"))
        return RetryableError(
            provider,
            text,
            status_code=status,
            provider_code=code,
            retry_after=wait if wait is not None else retry_after_header(response),
        )
    names_user = code == "BAD_REQUEST" and msg.startswith(INVALID_USER_MESSAGES)
    if code == "STREAM_DOES_NOT_EXIST" or names_user:
        whose = "recipient's chat_id" if request.from_recipient else "stream setting"
        return destination_error(request.from_recipient)(
            provider, f"{text} ({whose})", status_code=status, provider_code=code
        )
    if code in AUTH_CODES:
        return IntegrationError(provider, text, status_code=status, provider_code=code)
    if response.is_success:
        return IntegrationError(
            provider, "Zulip answered without result: success", status_code=status
        )
    return classify_status(provider, response, message=text, provider_code=code)
