"""LINE Messaging API (send push message):
https://developers.line.biz/en/reference/messaging-api/#send-push-message

``POST https://api.line.me/v2/bot/message/push`` with ``Authorization: Bearer <channel access
token>`` and ``{"to": <user, group or room id>, "messages": [{"type": "text", "text"}],
"notificationDisabled"}``. ``X-Line-Retry-Key`` is the idempotency key
(https://developers.line.biz/en/docs/messaging-api/retrying-api-request/): a UUID, here the
name-based (v5) UUID of :attr:`Message.idempotency_key`, the same for every retry of a delivery;
a request whose key was already accepted answers ``409`` (with the ``sentMessages`` of the
first and ``x-line-accepted-request-id``), which is the send having succeeded.

A ``chat`` provider: the recipient's ``chat_id`` is their LINE user id (``U`` and 32 hex digits,
as the bot's webhook events name them), or a group (``C...``) or room (``R...``) id; else the
``to`` setting.

The answer is ``{"sentMessages": [{"id", "quoteToken"}]}``: the first ``id`` is the message id.
Refusals are ``{"message", "details": [{"message", "property"}]}``
(https://developers.line.biz/en/reference/messaging-api/#status-codes): 400 naming the ``to``
property is an invalid destination (the recipient's, when it was their ``chat_id``); other 400s
a request the integration must fix; 401 (bad token) and 403 (the plan lacks the endpoint) are
the integration's; 429 (the rate limit, or the month's message quota) is retried after
``Retry-After``; 5xx are retried. ``GET /v2/bot/info`` checks the token.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from pydantic import ConfigDict, SecretStr

from providers.base import (
    ChannelType,
    CheckResult,
    Credentials,
    LongBody,
    Message,
    Settings,
)
from providers.chat_webhook import (
    BotPost,
    chat_destination,
    compose_text,
    destination_error,
    redact,
    response_detail,
)
from providers.errors import ProviderError
from providers.http import classify_status, json_body, send_request
from providers.http_provider import HttpProvider

API_URL = "https://api.line.me/v2/bot"
#: Namespace of the v5 UUIDs sent as ``X-Line-Retry-Key``.
RETRY_KEY_NAMESPACE = uuid.UUID("6c0e8f55-3c2b-4d8e-9a61-2f4f7a1d9b37")
#: The answer to a retry key already accepted (with the first request's ``sentMessages``).
ALREADY_ACCEPTED = 409
#: Characters of one text message.
MAX_TEXT = 5_000


class LineCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: A channel access token (long-lived, or v2.1 issued with a JWT assertion).
    channel_access_token: SecretStr


class LineSettings(Settings):
    #: User, group or room id used when the recipient has no ``chat_id``.
    to: str | None = None
    #: Deliver without a sound or a notification on the user's device.
    notification_disabled: bool = False


def retry_key(message: Message) -> str:
    """The ``X-Line-Retry-Key`` of a delivery: a UUID stable across its retries."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, message.idempotency_key))


class LineProvider(HttpProvider[LineCredentials, LineSettings, BotPost]):
    """Pushes a text message to a LINE user, group or room."""

    name = "line"
    display_name = "LINE Messaging API"
    channel = ChannelType.CHAT
    credentials_model = LineCredentials
    settings_model = LineSettings
    returns_message_id = True
    supports_idempotency_key = True
    max_body_length = MAX_TEXT
    long_body = LongBody.REFUSE

    def build_request(
        self, message: Message, credentials: LineCredentials, settings: LineSettings
    ) -> BotPost:
        to, from_recipient = chat_destination(self.name, message, settings.to, "to")
        return BotPost(
            "POST",
            f"{API_URL}/message/push",
            headers={
                **_headers(credentials),
                "X-Line-Retry-Key": retry_key(message),
            },
            json=build_payload(message, to, settings),
            from_recipient=from_recipient,
            token=credentials.channel_access_token,
        )

    def message_id(self, response: httpx.Response) -> str | None:
        sent = json_body(response).get("sentMessages")
        first = sent[0] if isinstance(sent, list) and sent else None
        value = first.get("id") if isinstance(first, dict) else None
        return str(value) if value else None

    def rejection(self, response: httpx.Response, request: BotPost) -> ProviderError | None:
        # 409 is LINE's "a request with this retry key was already accepted": it was sent then.
        if response.is_success or response.status_code == ALREADY_ACCEPTED:
            return None
        return _refusal(self.name, response, request)

    async def check(
        self, credentials: LineCredentials, settings: LineSettings, client: httpx.AsyncClient
    ) -> CheckResult | None:
        url = f"{API_URL}/info"
        try:
            response = await send_request(
                self.name, client, "GET", url, headers=_headers(credentials)
            )
        except ProviderError as error:
            return CheckResult(ok=False, detail=error.reason)
        if not response.is_success:
            probe = BotPost(
                "GET", url, from_recipient=False, token=credentials.channel_access_token
            )
            return CheckResult(ok=False, detail=_refusal(self.name, response, probe).reason)
        body = json_body(response)
        return CheckResult(
            ok=True, detail=f"bot {body.get('displayName')!s} ({body.get('basicId')!s})"
        )


def build_payload(message: Message, to: str, settings: LineSettings) -> dict[str, Any]:
    messages = message.options.get("messages")
    if not isinstance(messages, list) or not messages:
        messages = [{"type": "text", "text": compose_text(message, lambda title: title)}]
    payload: dict[str, Any] = {"to": to, "messages": messages}
    if settings.notification_disabled or message.options.get("notification_disabled"):
        payload["notificationDisabled"] = True
    return payload


def _headers(credentials: LineCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.channel_access_token.get_secret_value()}"}


def _names_destination(body: dict[str, Any]) -> bool:
    details = body.get("details")
    properties = [
        str(detail.get("property") or "")
        for detail in (details if isinstance(details, list) else [])
        if isinstance(detail, dict)
    ]
    return "to" in properties or "'to'" in str(body.get("message") or "")


def _refusal(provider: str, response: httpx.Response, request: BotPost) -> ProviderError:
    status = response.status_code
    secret = request.token.get_secret_value()
    body = json_body(response)
    explained = str(body.get("message") or "")
    detail = (
        redact(explained, secrets=[secret])
        if explained
        else response_detail(response, secrets=[secret])
    )
    text = f"HTTP {status}: {detail}"
    if status == 400 and _names_destination(body):
        whose = "recipient's chat_id" if request.from_recipient else "to setting"
        return destination_error(request.from_recipient)(
            provider, f"{text} ({whose})", status_code=status
        )
    return classify_status(provider, response, message=text)
