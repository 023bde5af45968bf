"""Telnyx Messaging API: https://developers.telnyx.com/api/messaging/send-message

``POST https://api.telnyx.com/v2/messages`` with ``Authorization: Bearer <API key>`` and a JSON
body: ``to`` (+E.164), ``text``, ``type`` (``SMS``), ``from`` (a number, short code or
alphanumeric sender id) and/or ``messaging_profile_id`` (required with an alphanumeric sender id
or to send from the profile's number pool), optional ``webhook_url``. A 200 answer's
``data.id`` is the message id. Errors are
``{"errors": [{"code", "title", "detail", "source": {"pointer"}}]}``
(https://developers.telnyx.com/development/api-fundamentals/api-errors): 10009 authentication
failed, 10011 too many requests, 10002/10016 invalid number (a recipient error when the pointer
is ``/to``); the messaging codes
(https://developers.telnyx.com/docs/messaging/messages/error-codes) add 40300 recipient replied
STOP and 40310 invalid 'to' address. The send endpoint declares no idempotency key.
``GET /v2/balance`` reads the balance without sending anything. Webhooks, signed with Ed25519,
are verified with the account's ``public_key`` and read by :mod:`providers.telnyx_callbacks`.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr, field_validator, model_validator

from providers.base import ChannelType, CheckResult, Credentials, Message, Settings
from providers.callbacks import CallbackRequest, ParsedCallback
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.http import json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.sms_common import (
    CodeTable,
    code_error,
    message_text,
    one_line,
    recipient_number,
)
from providers.telnyx_callbacks import load_public_key, parse_webhook

DEFAULT_BASE_URL = "https://api.telnyx.com"

#: Telnyx error codes a send may answer with, whatever the field they point at.
ERROR_CODES: CodeTable = {
    "10009": (IntegrationError, "authentication failed"),
    "10010": (IntegrationError, "authorization failed"),
    "10011": (RetryableError, "too many requests"),
    "40300": (RecipientError, "recipient replied STOP to this sender"),
    "40310": (RecipientError, "invalid 'to' address"),
}

#: Generic phone-number codes; recipient errors only when their ``source.pointer`` is ``/to``.
PHONE_NUMBER_CODES: CodeTable = {
    "10001": (RecipientError, "inactive 'to' number"),
    "10002": (RecipientError, "invalid 'to' number"),
    "10016": (RecipientError, "'to' number is not +E.164"),
}


class TelnyxCredentials(Credentials):
    api_key: SecretStr
    #: The account's webhook public key (base64 Ed25519, "Public Key" in the portal): without
    #: it every webhook is refused. Public, so not a secret.
    public_key: str | None = None

    @field_validator("public_key")
    @classmethod
    def _ed25519(cls, value: str | None) -> str | None:
        if value is not None and load_public_key(value) is None:
            raise ValueError("public_key must be the base64 Ed25519 public key Telnyx shows")
        return value


class TelnyxSettings(Settings):
    #: A Telnyx number (+E.164), short code or alphanumeric sender id.
    from_number: str | None = None
    #: Required with an alphanumeric sender id, or alone to send from the profile's number pool.
    messaging_profile_id: str | None = None
    webhook_url: str | None = None
    base_url: str = DEFAULT_BASE_URL

    @model_validator(mode="after")
    def _one_sender(self) -> TelnyxSettings:
        if not self.from_number and not self.messaging_profile_id:
            raise ValueError("set from_number or messaging_profile_id (number pool)")
        return self


class TelnyxProvider(HttpProvider[TelnyxCredentials, TelnyxSettings]):
    name = "telnyx"
    display_name = "Telnyx SMS"
    channel = ChannelType.SMS
    credentials_model = TelnyxCredentials
    settings_model = TelnyxSettings
    returns_message_id = True
    message_id_key = "data.id"
    supports_callbacks = True

    def build_request(
        self, message: Message, credentials: TelnyxCredentials, settings: TelnyxSettings
    ) -> HttpRequest:
        return HttpRequest(
            "POST",
            f"{settings.base_url.rstrip('/')}/v2/messages",
            headers=_auth(credentials),
            json=build_payload(message, recipient_number(self.name, message), settings),
        )

    async def check(
        self,
        credentials: TelnyxCredentials,
        settings: TelnyxSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{settings.base_url.rstrip('/')}/v2/balance",
            headers=_auth(credentials),
        )
        if not response.is_success:
            return CheckResult(ok=False, detail=str(self.classify(response)))
        data = json_body(response).get("data")
        fields = data if isinstance(data, dict) else {}
        balance = f"{fields.get('balance')} {fields.get('currency') or ''}".strip()
        return CheckResult(ok=True, detail=f"API key valid; balance: {balance}")

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: TelnyxCredentials,
        settings: TelnyxSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """A webhook, signed with Ed25519 (:mod:`providers.telnyx_callbacks`)."""
        return parse_webhook(request, credentials.public_key)

    def classify(self, response: httpx.Response) -> ProviderError:
        first = _first_error(response)
        if first is None:
            return self.coded_error(response, None)
        code = str(first.get("code") or "")
        detail = one_line(f"{first.get('title') or ''}: {first.get('detail') or ''}".strip(": "))
        source = first.get("source")
        pointer = source.get("pointer") if isinstance(source, dict) else None
        known = code_error(self.name, ERROR_CODES, code, detail, response)
        if known is None and pointer == "/to":
            known = code_error(self.name, PHONE_NUMBER_CODES, code, detail, response)
        text = f"HTTP {response.status_code}: {code} {detail}".strip()
        return known or self.coded_error(response, ErrorCode(code or None, text))


def _first_error(response: httpx.Response) -> dict[str, Any] | None:
    errors = json_body(response).get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    return first if isinstance(first, dict) else None


def build_payload(message: Message, to: str, settings: TelnyxSettings) -> dict[str, Any]:
    """The documented Send a message body for one recipient."""
    payload: dict[str, Any] = {
        "to": to,
        "text": message_text(TelnyxProvider.name, message),
        "type": "SMS",
    }
    if settings.from_number:
        payload["from"] = settings.from_number
    if settings.messaging_profile_id:
        payload["messaging_profile_id"] = settings.messaging_profile_id
    if settings.webhook_url:
        payload["webhook_url"] = settings.webhook_url
    return payload


def _auth(credentials: TelnyxCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.api_key.get_secret_value()}"}
