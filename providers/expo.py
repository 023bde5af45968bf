"""Expo push notifications: https://docs.expo.dev/push-notifications/sending-notifications/

``POST https://exp.host/--/api/v2/push/send`` with a JSON array of up to 100 messages
(``{"to": <Expo push token>, "title", "body", "data", ...}``), one per device token here, and
``Authorization: Bearer <access token>`` when the project enforces push security. The 200 answer
``{"data": [ticket, ...]}`` holds one push ticket per message, in order: ``{"status": "ok", "id":
<receipt id>}`` or ``{"status": "error", "message", "details": {"error": <code>}}``, where
DeviceNotRegistered (and MessageTooBig) are recipient errors, MessageRateExceeded is retried, and
InvalidCredentials and MismatchSenderId are integration errors. The tickets fold into one outcome
as the per-token push APIs do (:mod:`providers.push_fanout`); the message id is the receipt id.
A request the service refuses as a whole answers ``{"errors": [{"code", "message"}]}`` with a 4xx
or 5xx status.

Not an :class:`~providers.http_provider.HttpProvider`: a send is one request per 100 device
tokens, and its outcome is folded from the tickets of every token.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from providers.base import (
    ChannelType,
    Credentials,
    Message,
    NoSettings,
    Provider,
    SendResult,
)
from providers.errors import (
    MAX_DETAIL,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import classify_status, json_body, send_request
from providers.push_fanout import fold_outcomes, unique_tokens

SEND_URL = "https://exp.host/--/api/v2/push/send"
#: Messages Expo accepts in one request.
MAX_MESSAGES_PER_REQUEST = 100

TICKET_ERRORS: dict[str, type[ProviderError]] = {
    "DeviceNotRegistered": RecipientError,
    # The payload is over 4096 bytes: no integration can send this message as it is.
    "MessageTooBig": RecipientError,
    "MessageRateExceeded": RetryableError,
    "InvalidCredentials": IntegrationError,
    "MismatchSenderId": IntegrationError,
}

#: ``Message.options["expo"]`` keys passed through into each message as they are.
EXPO_OPTION_KEYS = (
    "subtitle",
    "sound",
    "badge",
    "ttl",
    "expiration",
    "priority",
    "channelId",
    "categoryId",
    "interruptionLevel",
    "mutableContent",
)


class ExpoCredentials(Credentials):
    #: Only needed when "Enhanced push security" is on for the Expo project.
    access_token: SecretStr | None = None


class ExpoProvider(Provider[ExpoCredentials, NoSettings]):
    name = "expo"
    display_name = "Expo push notifications"
    channel = ChannelType.PUSH
    credentials_model = ExpoCredentials
    settings_model = NoSettings
    returns_message_id = True

    async def send(
        self,
        message: Message,
        credentials: ExpoCredentials,
        settings: NoSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        tokens = unique_tokens(self.name, message.to.device_tokens)
        outcomes: list[SendResult | ProviderError] = []
        for start in range(0, len(tokens), MAX_MESSAGES_PER_REQUEST):
            chunk = tokens[start : start + MAX_MESSAGES_PER_REQUEST]
            outcomes += await self._send_chunk(message, chunk, credentials, client)
        return fold_outcomes(self.name, outcomes)

    async def _send_chunk(
        self,
        message: Message,
        tokens: list[str],
        credentials: ExpoCredentials,
        client: httpx.AsyncClient,
    ) -> list[SendResult | ProviderError]:
        headers = {"Accept": "application/json"}
        if credentials.access_token is not None:
            headers["Authorization"] = f"Bearer {credentials.access_token.get_secret_value()}"
        response = await send_request(
            self.name,
            client,
            "POST",
            SEND_URL,
            headers=headers,
            json=[build_message(message, token) for token in tokens],
        )
        body = json_body(response)
        if not response.is_success:
            raise classify_status(
                self.name, response, message=_request_error(response, body), provider_code=None
            )
        if body.get("errors"):
            raise IntegrationError(
                self.name, _request_error(response, body), status_code=response.status_code
            )
        tickets = body.get("data")
        if not isinstance(tickets, list) or len(tickets) != len(tokens):
            raise RetryableError(
                self.name,
                f"expected {len(tokens)} push tickets in the answer",
                status_code=response.status_code,
            )
        return [self._ticket_outcome(ticket, response.status_code) for ticket in tickets]

    def _ticket_outcome(self, ticket: Any, status_code: int) -> SendResult | ProviderError:
        ticket = ticket if isinstance(ticket, dict) else {}
        if ticket.get("status") == "ok":
            receipt_id = ticket.get("id")
            return SendResult(
                provider_message_id=str(receipt_id) if receipt_id else None,
                status_code=status_code,
            )
        details = ticket.get("details")
        raw_code = details.get("error") if isinstance(details, dict) else None
        code = raw_code if isinstance(raw_code, str) and raw_code else None
        text = str(ticket.get("message") or "push ticket error")[:MAX_DETAIL]
        error_class = TICKET_ERRORS.get(code or "", IntegrationError)
        return error_class(
            self.name, f"{code or 'error'}: {text}", status_code=status_code, provider_code=code
        )


def _request_error(response: httpx.Response, body: dict[str, Any]) -> str:
    """``HTTP 400 VALIDATION_ERROR: ...`` from ``{"errors": [{"code", "message"}]}``."""
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    if isinstance(first, dict):
        code = str(first.get("code") or "")
        text = str(first.get("message") or "")[:MAX_DETAIL]
        return f"HTTP {response.status_code} {code}: {text}".strip().rstrip(":")
    return f"HTTP {response.status_code}"


def build_message(message: Message, token: str) -> dict[str, Any]:
    """One Expo push message for one push token."""
    body: dict[str, Any] = {"to": token}
    if message.title:
        body["title"] = message.title
    if message.body:
        body["body"] = message.body
    if message.data:
        body["data"] = message.data
    extra = message.options.get("expo")
    if isinstance(extra, dict):
        body.update({key: extra[key] for key in EXPO_OPTION_KEYS if key in extra})
    return body
