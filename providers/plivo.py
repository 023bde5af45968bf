"""Plivo Messaging API: https://www.plivo.com/docs/messaging/api/message/send-a-message

``POST /v1/Account/{auth_id}/Message/`` with HTTP basic auth (Auth ID and Auth Token) and a JSON
body (``src`` or ``powerpack_uuid``, ``dst``, ``text``). A 202 answer lists ``message_uuid``; a
400 answer carries ``{"api_id", "error"}`` (``"<dst> is not a valid phone number"`` for a bad
destination); 401 is an authentication failure
(https://www.plivo.com/docs/messaging/api/response).
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import SecretStr, model_validator

from providers.base import (
    ChannelType,
    CheckResult,
    Credentials,
    Message,
    Provider,
    SendResult,
    Settings,
)
from providers.errors import RecipientError
from providers.http import classify_status, json_body, send_request

DEFAULT_BASE_URL = "https://api.plivo.com"


class PlivoCredentials(Credentials):
    auth_id: str
    auth_token: SecretStr


class PlivoSettings(Settings):
    #: A Plivo number or alphanumeric sender id.
    src: str | None = None
    #: A Powerpack to pick the sender from, instead of ``src``.
    powerpack_uuid: str | None = None
    #: Status callback URL.
    url: str | None = None
    base_url: str = DEFAULT_BASE_URL

    @model_validator(mode="after")
    def _one_sender(self) -> PlivoSettings:
        if not self.src and not self.powerpack_uuid:
            raise ValueError("set src or powerpack_uuid")
        return self


class PlivoProvider(Provider[PlivoCredentials, PlivoSettings]):
    name: ClassVar[str] = "plivo"
    display_name: ClassVar[str] = "Plivo SMS"
    channel: ClassVar[ChannelType] = ChannelType.SMS
    credentials_model: ClassVar[type[Credentials]] = PlivoCredentials
    settings_model: ClassVar[type[Settings]] = PlivoSettings
    returns_message_id: ClassVar[bool] = True

    async def send(
        self,
        message: Message,
        credentials: PlivoCredentials,
        settings: PlivoSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        phone = message.to.phone
        if not phone:
            raise RecipientError(self.name, "recipient has no phone number")
        payload: dict[str, Any] = {"dst": phone, "text": message.body, "type": "sms"}
        if settings.src:
            payload["src"] = settings.src
        if settings.powerpack_uuid:
            payload["powerpack_uuid"] = settings.powerpack_uuid
        if settings.url:
            payload["url"] = settings.url
        response = await send_request(
            self.name,
            client,
            "POST",
            f"{_account_url(credentials, settings)}/Message/",
            auth=(credentials.auth_id, credentials.auth_token.get_secret_value()),
            json=payload,
        )
        body = json_body(response)
        if response.is_success:
            uuids = body.get("message_uuid")
            if isinstance(uuids, list) and uuids:
                return SendResult(
                    provider_message_id=str(uuids[0]), status_code=response.status_code
                )
            if body.get("invalid_number"):
                raise RecipientError(
                    self.name,
                    "invalid destination number",
                    status_code=response.status_code,
                    provider_code="invalid_number",
                )
            return SendResult(provider_message_id=None, status_code=response.status_code)
        error = str(body.get("error") or "")
        if response.status_code == 400 and _is_destination_error(error, phone):
            raise RecipientError(
                self.name,
                f"invalid destination: {error[:200]}",
                status_code=400,
                provider_code="invalid_dst",
            )
        if error:
            raise classify_status(
                self.name, response, message=f"HTTP {response.status_code}: {error[:200]}"
            )
        raise classify_status(self.name, response)

    async def check(
        self,
        credentials: PlivoCredentials,
        settings: PlivoSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{_account_url(credentials, settings)}/",
            auth=(credentials.auth_id, credentials.auth_token.get_secret_value()),
        )
        if response.is_success:
            body = json_body(response)
            return CheckResult(
                ok=True, detail=f"account: {body.get('name') or body.get('account_type', 'ok')}"
            )
        return CheckResult(ok=False, detail=str(classify_status(self.name, response)))


def _account_url(credentials: PlivoCredentials, settings: PlivoSettings) -> str:
    return f"{settings.base_url.rstrip('/')}/v1/Account/{credentials.auth_id}"


def _is_destination_error(error: str, phone: str) -> bool:
    """Whether a 400 ``error`` text names the destination rather than the sender or account."""
    lowered = error.lower()
    if "src" in lowered or "source" in lowered or "sender" in lowered:
        return False
    digits = phone.strip().lstrip("+")
    return "dst" in lowered or "destination" in lowered or (bool(digits) and digits in error)
