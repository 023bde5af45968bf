"""Telnyx Messaging API.

https://developers.telnyx.com/api/messaging/send-message

``POST https://api.telnyx.com/v2/messages`` with ``Authorization: Bearer <API key>`` and a JSON
body (``from``, ``to``, ``text``, optional ``messaging_profile_id``). The answer's ``data.id`` is
the message id. Errors are ``{"errors": [{"code", "title", "detail", "source": {"pointer"}}]}``
(https://developers.telnyx.com/development/api-fundamentals/api-errors): 40310 invalid 'to'
address, 40300 recipient sent STOP, 10009 authentication failed.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from providers.errors import ProviderError, RecipientError
from providers.http import classify_status, json_body, send_request

DEFAULT_BASE_URL = "https://api.telnyx.com"

#: Telnyx error codes that mean this recipient cannot get this SMS.
RECIPIENT_CODES: Mapping[str, str] = {
    "40300": "recipient sent STOP to this sender",
    "40310": "invalid 'to' address",
}

#: Generic phone-number codes; recipient errors only when their ``source.pointer`` is ``/to``.
PHONE_NUMBER_CODES = frozenset({"10001", "10002", "10016"})


class TelnyxCredentials(Credentials):
    api_key: SecretStr


class TelnyxSettings(Settings):
    #: A Telnyx number (E.164), short code or alphanumeric sender id.
    from_number: str
    #: Required with an alphanumeric sender id; optional otherwise.
    messaging_profile_id: str | None = None
    webhook_url: str | None = None
    base_url: str = DEFAULT_BASE_URL


class TelnyxProvider(Provider[TelnyxCredentials, TelnyxSettings]):
    name: ClassVar[str] = "telnyx"
    display_name: ClassVar[str] = "Telnyx SMS"
    channel: ClassVar[ChannelType] = ChannelType.SMS
    credentials_model: ClassVar[type[Credentials]] = TelnyxCredentials
    settings_model: ClassVar[type[Settings]] = TelnyxSettings
    returns_message_id: ClassVar[bool] = True

    async def send(
        self,
        message: Message,
        credentials: TelnyxCredentials,
        settings: TelnyxSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        phone = message.to.phone
        if not phone:
            raise RecipientError(self.name, "recipient has no phone number")
        payload: dict[str, Any] = {"from": settings.from_number, "to": phone, "text": message.body}
        if settings.messaging_profile_id:
            payload["messaging_profile_id"] = settings.messaging_profile_id
        if settings.webhook_url:
            payload["webhook_url"] = settings.webhook_url
        response = await send_request(
            self.name,
            client,
            "POST",
            f"{settings.base_url.rstrip('/')}/v2/messages",
            headers=_auth(credentials),
            json=payload,
        )
        body = json_body(response)
        if response.is_success:
            data = body.get("data")
            message_id = data.get("id") if isinstance(data, dict) else None
            return SendResult(
                provider_message_id=str(message_id) if message_id else None,
                status_code=response.status_code,
            )
        raise self._error(response, body)

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
        body = json_body(response)
        if response.is_success:
            data = body.get("data")
            balance = data.get("balance") if isinstance(data, dict) else None
            return CheckResult(ok=True, detail=f"balance: {balance}")
        return CheckResult(ok=False, detail=str(self._error(response, body)))

    def _error(self, response: httpx.Response, body: dict[str, Any]) -> ProviderError:
        errors = body.get("errors")
        first = errors[0] if isinstance(errors, list) and errors else None
        if not isinstance(first, dict):
            return classify_status(self.name, response)
        code = str(first.get("code", ""))
        title = str(first.get("title") or "")
        detail = str(first.get("detail") or "")
        source = first.get("source")
        pointer = source.get("pointer") if isinstance(source, dict) else None
        text = f"{code} {title}: {detail}"[:300]
        if code in RECIPIENT_CODES or (code in PHONE_NUMBER_CODES and pointer == "/to"):
            return RecipientError(
                self.name,
                f"{RECIPIENT_CODES.get(code, title)} ({text})",
                status_code=response.status_code,
                provider_code=code,
            )
        return classify_status(
            self.name, response, message=f"HTTP {response.status_code}: {text}", provider_code=code
        )


def _auth(credentials: TelnyxCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.api_key.get_secret_value()}"}
