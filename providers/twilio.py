"""Twilio Programmable Messaging: https://www.twilio.com/docs/messaging/api/message-resource

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP basic auth (Account SID and
Auth Token) and a form-encoded body (``To``, ``Body`` and ``From`` or ``MessagingServiceSid``).
The answer's ``sid`` is the message id. Errors carry Twilio's numeric ``code``
(https://www.twilio.com/docs/api/errors): 21211 invalid 'To', 21614 not a mobile number, 21610
unsubscribed recipient, 20003 authentication failure, 20429 too many requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

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
from providers.errors import (
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import classify_status, json_body, parse_retry_after, send_request

DEFAULT_BASE_URL = "https://api.twilio.com"

#: Twilio error codes that mean this recipient cannot get this SMS.
RECIPIENT_CODES: Mapping[int, str] = {
    21211: "invalid 'To' phone number",
    21610: "recipient has unsubscribed (replied STOP)",
    21612: "'To' number is not reachable on this channel",
    21614: "'To' number is not a valid mobile number",
}

#: Twilio error codes that are transient for the sending account.
RETRYABLE_CODES: Mapping[int, str] = {
    20429: "too many requests",
    21611: "'From' number has too many queued messages",
}


class TwilioCredentials(Credentials):
    account_sid: str
    auth_token: SecretStr


class TwilioSettings(Settings):
    #: A Twilio phone number (E.164), short code or alphanumeric sender id.
    from_number: str | None = None
    #: A Messaging Service (``MG...``) to send from instead of ``from_number``.
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    #: Override for Twilio edge locations (``https://api.dublin.ie1.twilio.com``).
    base_url: str = DEFAULT_BASE_URL

    @model_validator(mode="after")
    def _one_sender(self) -> TwilioSettings:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("set from_number or messaging_service_sid")
        return self


class TwilioProvider(Provider[TwilioCredentials, TwilioSettings]):
    name: ClassVar[str] = "twilio"
    display_name: ClassVar[str] = "Twilio SMS"
    channel: ClassVar[ChannelType] = ChannelType.SMS
    credentials_model: ClassVar[type[Credentials]] = TwilioCredentials
    settings_model: ClassVar[type[Settings]] = TwilioSettings
    returns_message_id: ClassVar[bool] = True
    #: "Body ... can be up to 1,600 characters in length."
    max_body_length: ClassVar[int | None] = 1600

    async def send(
        self,
        message: Message,
        credentials: TwilioCredentials,
        settings: TwilioSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        phone = message.to.phone
        if not phone:
            raise RecipientError(self.name, "recipient has no phone number")
        form = {"To": phone, "Body": message.body}
        if settings.messaging_service_sid:
            form["MessagingServiceSid"] = settings.messaging_service_sid
        if settings.from_number:
            form["From"] = settings.from_number
        if settings.status_callback:
            form["StatusCallback"] = settings.status_callback
        response = await send_request(
            self.name,
            client,
            "POST",
            f"{_account_url(credentials, settings)}/Messages.json",
            auth=(credentials.account_sid, credentials.auth_token.get_secret_value()),
            data=form,
        )
        body = json_body(response)
        if response.is_success:
            sid = body.get("sid")
            return SendResult(
                provider_message_id=str(sid) if sid else None,
                status_code=response.status_code,
            )
        raise self._error(response, body)

    async def check(
        self,
        credentials: TwilioCredentials,
        settings: TwilioSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{_account_url(credentials, settings)}.json",
            auth=(credentials.account_sid, credentials.auth_token.get_secret_value()),
        )
        body = json_body(response)
        if response.is_success:
            return CheckResult(ok=True, detail=f"account status: {body.get('status', 'unknown')}")
        return CheckResult(ok=False, detail=str(self._error(response, body)))

    def _error(self, response: httpx.Response, body: dict[str, object]) -> ProviderError:
        status = response.status_code
        code = body.get("code")
        if not isinstance(code, int):
            return classify_status(self.name, response)
        text = f"{code}: {str(body.get('message') or '')[:200]}"
        provider_code = str(code)
        if code in RECIPIENT_CODES:
            return RecipientError(
                self.name,
                f"{RECIPIENT_CODES[code]} ({text})",
                status_code=status,
                provider_code=provider_code,
            )
        if code in RETRYABLE_CODES and status < 500:
            return RetryableError(
                self.name,
                f"{RETRYABLE_CODES[code]} ({text})",
                status_code=status,
                provider_code=provider_code,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status in (401, 403):
            return IntegrationError(
                self.name, text, status_code=status, provider_code=provider_code
            )
        return classify_status(self.name, response, message=text, provider_code=provider_code)


def _account_url(credentials: TwilioCredentials, settings: TwilioSettings) -> str:
    base = settings.base_url.rstrip("/")
    return f"{base}/2010-04-01/Accounts/{credentials.account_sid}"
