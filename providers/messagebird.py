"""MessageBird SMS Messaging API: https://developers.messagebird.com/api/sms-messaging/

``POST https://rest.messagebird.com/messages`` with ``Authorization: AccessKey <key>`` and a JSON
body (``originator``, ``recipients``, ``body``, optional ``reference``). A 201 answer carries the
message ``id``. Errors are ``{"errors": [{"code", "description", "parameter"}]}``
(https://developers.messagebird.com/api/#api-errors): 2 request not allowed (bad access key),
9 missing or no correct recipients, 10 invalid parameter, 25 not enough balance.
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
from providers.errors import IntegrationError, ProviderError, RecipientError
from providers.http import classify_status, json_body, send_request

DEFAULT_BASE_URL = "https://rest.messagebird.com"

#: Error codes that are permanent for the integration whatever the HTTP status says.
INTEGRATION_CODES: Mapping[int, str] = {
    2: "request not allowed (incorrect access key)",
    25: "not enough balance",
}

#: Codes that name a parameter; a recipient error when the parameter is ``recipients``.
PARAMETER_CODES = frozenset({9, 10})


class MessageBirdCredentials(Credentials):
    access_key: SecretStr


class MessageBirdSettings(Settings):
    #: Sender: a phone number (with country code) or an alphanumeric string of up to 11 characters.
    originator: str
    #: Status report webhook, when not set on the account.
    report_url: str | None = None
    base_url: str = DEFAULT_BASE_URL


class MessageBirdProvider(Provider[MessageBirdCredentials, MessageBirdSettings]):
    name: ClassVar[str] = "messagebird"
    display_name: ClassVar[str] = "MessageBird SMS"
    channel: ClassVar[ChannelType] = ChannelType.SMS
    credentials_model: ClassVar[type[Credentials]] = MessageBirdCredentials
    settings_model: ClassVar[type[Settings]] = MessageBirdSettings
    returns_message_id: ClassVar[bool] = True

    async def send(
        self,
        message: Message,
        credentials: MessageBirdCredentials,
        settings: MessageBirdSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        phone = message.to.phone
        if not phone:
            raise RecipientError(self.name, "recipient has no phone number")
        payload: dict[str, Any] = {
            "originator": settings.originator,
            "recipients": [phone],
            "body": message.body,
            # Echoed back on status reports, so they can be matched to the delivery.
            "reference": message.delivery_id,
        }
        if settings.report_url:
            payload["reportUrl"] = settings.report_url
        response = await send_request(
            self.name,
            client,
            "POST",
            f"{settings.base_url.rstrip('/')}/messages",
            headers=_auth(credentials),
            json=payload,
        )
        body = json_body(response)
        if response.is_success:
            message_id = body.get("id")
            return SendResult(
                provider_message_id=str(message_id) if message_id else None,
                status_code=response.status_code,
            )
        raise self._error(response, body)

    async def check(
        self,
        credentials: MessageBirdCredentials,
        settings: MessageBirdSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{settings.base_url.rstrip('/')}/balance",
            headers=_auth(credentials),
        )
        body = json_body(response)
        if response.is_success:
            return CheckResult(
                ok=True, detail=f"balance: {body.get('amount')} {body.get('type', '')}".strip()
            )
        return CheckResult(ok=False, detail=str(self._error(response, body)))

    def _error(self, response: httpx.Response, body: dict[str, Any]) -> ProviderError:
        errors = body.get("errors")
        entries = (
            [entry for entry in errors if isinstance(entry, dict)]
            if isinstance(errors, list)
            else []
        )
        if not entries:
            return classify_status(self.name, response)
        status = response.status_code
        summary = "; ".join(
            f"{entry.get('code')} {entry.get('description', '')} ({entry.get('parameter')})"
            for entry in entries
        )[:300]
        for entry in entries:
            code = entry.get("code")
            if isinstance(code, int) and code in INTEGRATION_CODES:
                return IntegrationError(
                    self.name,
                    f"{INTEGRATION_CODES[code]}: {summary}",
                    status_code=status,
                    provider_code=str(code),
                )
        first = entries[0]
        if status < 500 and all(
            entry.get("code") in PARAMETER_CODES and entry.get("parameter") == "recipients"
            for entry in entries
        ):
            return RecipientError(
                self.name,
                f"invalid recipient: {summary}",
                status_code=status,
                provider_code=str(first.get("code")),
            )
        return classify_status(
            self.name,
            response,
            message=f"HTTP {status}: {summary}",
            provider_code=str(first.get("code")),
        )


def _auth(credentials: MessageBirdCredentials) -> dict[str, str]:
    return {"Authorization": f"AccessKey {credentials.access_key.get_secret_value()}"}
