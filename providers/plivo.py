"""Plivo Messaging API: https://www.plivo.com/docs/messaging/api/message/send-a-message

``POST https://api.plivo.com/v1/Account/{auth_id}/Message/`` with HTTP basic auth (Auth ID and
Auth Token) and a JSON body: ``src`` or ``powerpack_uuid`` (not both), ``dst`` (several numbers
would be joined with ``<``, so only a checked E.164 number goes there), ``text``, ``type``
(``sms``) and an optional status callback ``url``. A 202 answer is
``{"api_id", "message": "message(s) queued", "message_uuid": [...]}`` and lists refused
destinations under ``invalid_number``. Errors are ``{"api_id", "error"}``: 400 a parameter is
missing or invalid, 401 authentication failed, 429 rate limited
(https://www.plivo.com/docs/messaging/api/response). The API takes no idempotency key.
``GET /v1/Account/{auth_id}/`` reads the account without sending anything. Status callbacks,
signed with the Auth Token (V3 signature), are verified and read by
:mod:`providers.plivo_callbacks`.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, SecretStr, model_validator

from providers.base import ChannelType, CheckResult, Credentials, Message, Settings
from providers.callbacks import CallbackRequest, ParsedCallback
from providers.errors import ProviderError, RecipientError
from providers.http import json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.plivo_callbacks import parse_status_callback
from providers.sms_common import message_text, msisdn, one_line, recipient_number

DEFAULT_BASE_URL = "https://api.plivo.com"


class PlivoCredentials(Credentials):
    #: ``MA...`` or ``SA...``; it is also part of every request path.
    auth_id: str = Field(pattern=r"^[A-Za-z0-9]+$")
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
        if bool(self.src) == bool(self.powerpack_uuid):
            raise ValueError("set exactly one of src or powerpack_uuid")
        return self


class PlivoProvider(HttpProvider[PlivoCredentials, PlivoSettings]):
    name = "plivo"
    display_name = "Plivo SMS"
    channel = ChannelType.SMS
    credentials_model = PlivoCredentials
    settings_model = PlivoSettings
    returns_message_id = True
    #: "Messages containing only GSM03.38 7 bit characters have a maximum limit of 1600
    #: characters" (737 with unicode characters).
    max_body_length = 1600
    supports_callbacks = True

    def build_request(
        self, message: Message, credentials: PlivoCredentials, settings: PlivoSettings
    ) -> HttpRequest:
        return HttpRequest(
            "POST",
            f"{_account_url(credentials, settings)}/Message/",
            auth=_auth(credentials),
            json=build_payload(message, recipient_number(self.name, message), settings),
        )

    def message_id(self, response: httpx.Response) -> str | None:
        uuids = json_body(response).get("message_uuid")
        return str(uuids[0]) if isinstance(uuids, list) and uuids else None

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        body = json_body(response)
        if not response.is_success:
            return self._error(response, body, dst=request.json["dst"])
        if self.message_id(response) is None and body.get("invalid_number"):
            return RecipientError(
                self.name,
                "invalid destination number",
                status_code=response.status_code,
                provider_code="invalid_number",
            )
        return None

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
            auth=_auth(credentials),
        )
        if response.is_success:
            body = json_body(response)
            kind = body.get("account_type") or "unknown"
            return CheckResult(ok=True, detail=f"credentials valid; account type: {kind}")
        return CheckResult(ok=False, detail=str(self.classify(response)))

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: PlivoCredentials,
        settings: PlivoSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """A status callback, V3-signed with the Auth Token (see providers.plivo_callbacks)."""
        return parse_status_callback(request, credentials.auth_token.get_secret_value())

    def _error(self, response: httpx.Response, body: dict[str, Any], dst: str) -> ProviderError:
        error = one_line(body.get("error") or "")
        if not error:
            return self.classify(response)
        if response.status_code == 400 and _is_destination_error(error, dst):
            return RecipientError(
                self.name,
                f"invalid destination: {error}",
                status_code=400,
                provider_code="invalid_dst",
            )
        return self.coded_error(response, ErrorCode(None, f"HTTP {response.status_code}: {error}"))


def build_payload(message: Message, dst: str, settings: PlivoSettings) -> dict[str, Any]:
    """The documented Send a Message body for one recipient."""
    payload: dict[str, Any] = {
        "dst": dst,
        "text": message_text(PlivoProvider.name, message),
        "type": "sms",
    }
    if settings.src:
        payload["src"] = settings.src
    if settings.powerpack_uuid:
        payload["powerpack_uuid"] = settings.powerpack_uuid
    if settings.url:
        payload["url"] = settings.url
    return payload


def _auth(credentials: PlivoCredentials) -> tuple[str, str]:
    return (credentials.auth_id, credentials.auth_token.get_secret_value())


def _account_url(credentials: PlivoCredentials, settings: PlivoSettings) -> str:
    return f"{settings.base_url.rstrip('/')}/v1/Account/{credentials.auth_id}"


def _is_destination_error(error: str, dst: str) -> bool:
    """Whether a 400 ``error`` text names the destination rather than the sender or account."""
    lowered = error.lower()
    if "src" in lowered or "source" in lowered or "sender" in lowered or "powerpack" in lowered:
        return False
    return "dst" in lowered or "destination" in lowered or msisdn(dst) in error
