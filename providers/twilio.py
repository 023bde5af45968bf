"""Twilio Programmable Messaging: https://www.twilio.com/docs/messaging/api/message-resource

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` on ``https://api.twilio.com`` with HTTP
basic auth (Account SID and Auth Token) and a form-encoded body: ``To`` (E.164), ``Body``, and
``From`` or ``MessagingServiceSid`` (or both), optional ``StatusCallback``. A 201 answer is the
Message resource; its ``sid`` (``SM...``) is the message id. Errors are
``{"code", "message", "more_info", "status"}`` with Twilio's numeric code
(https://www.twilio.com/docs/api/errors): 21211 invalid 'To' number, 21610 recipient replied
STOP, 20003 authentication failed (HTTP 401), 20429 too many requests (HTTP 429). The Messages
API takes no idempotency key. ``GET /2010-04-01/Accounts/{AccountSid}.json`` reads the account
(``status``: active, suspended or closed) without sending anything.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr, model_validator

from providers.base import (
    ChannelType,
    CheckResult,
    Credentials,
    Message,
    Provider,
    RateLimitSettings,
    SendResult,
    Settings,
)
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.http import classify_status, json_body, send_request
from providers.sms_common import (
    CodeTable,
    code_error,
    message_text,
    one_line,
    recipient_number,
)

DEFAULT_BASE_URL = "https://api.twilio.com"

#: Twilio error codes a send may answer with, and what they mean for us. Codes not listed fall
#: back to the HTTP status (400 -> integration, 5xx -> retry).
ERROR_CODES: CodeTable = {
    "20003": (IntegrationError, "authentication failed"),
    "20429": (RetryableError, "too many requests"),
    "21211": (RecipientError, "invalid 'To' phone number"),
    "21408": (IntegrationError, "sending to this region is not enabled (geo permissions)"),
    "21606": (IntegrationError, "'From' number cannot send SMS to this destination"),
    "21608": (IntegrationError, "trial account cannot send to an unverified number"),
    "21610": (RecipientError, "recipient has unsubscribed (replied STOP)"),
    "21611": (RetryableError, "'From' number has too many queued messages"),
    "21612": (RecipientError, "'To' number is not reachable by SMS from this sender"),
    "21614": (RecipientError, "'To' number is not a valid mobile number"),
    "21617": (RecipientError, "message body exceeds 1600 characters"),
}


class TwilioCredentials(Credentials):
    #: ``AC`` and 32 hex digits; it is also part of every request path.
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr


class TwilioSettings(RateLimitSettings):
    """``rate_limit_per_second`` paces the sender: a US long code sends one segment a second,
    a toll-free number three, a short code a hundred (Twilio queues what goes beyond)."""

    #: A Twilio phone number (E.164), short code or alphanumeric sender id.
    from_number: str | None = None
    #: A Messaging Service (``MG...``) to send from, instead of or as well as ``from_number``.
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    status_callback: str | None = None
    #: Override for Twilio edge locations (``https://api.dublin.ie1.twilio.com``) or a test server.
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
        response = await send_request(
            self.name,
            client,
            "POST",
            f"{_account_url(credentials, settings)}/Messages.json",
            auth=_auth(credentials),
            data=build_form(message, recipient_number(self.name, message), settings),
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
            auth=_auth(credentials),
        )
        body = json_body(response)
        if not response.is_success:
            return CheckResult(ok=False, detail=str(self._error(response, body)))
        status = str(body.get("status") or "unknown")
        if status != "active":
            return CheckResult(ok=False, detail=f"account status is {status}, not active")
        return CheckResult(ok=True, detail="account active")

    def _error(self, response: httpx.Response, body: dict[str, Any]) -> ProviderError:
        code = body.get("code")
        if code is None:
            return classify_status(self.name, response)
        detail = one_line(body.get("message") or "")
        known = code_error(self.name, ERROR_CODES, str(code), detail, response)
        if known is not None:
            return known
        return classify_status(
            self.name,
            response,
            message=f"HTTP {response.status_code}: {code}: {detail}",
            provider_code=str(code),
        )


def build_form(message: Message, to: str, settings: TwilioSettings) -> dict[str, str]:
    """The documented Create Message form for one recipient."""
    form = {"To": to, "Body": message_text(TwilioProvider.name, message)}
    if settings.from_number:
        form["From"] = settings.from_number
    if settings.messaging_service_sid:
        form["MessagingServiceSid"] = settings.messaging_service_sid
    if settings.status_callback:
        form["StatusCallback"] = settings.status_callback
    return form


def _auth(credentials: TwilioCredentials) -> tuple[str, str]:
    return (credentials.account_sid, credentials.auth_token.get_secret_value())


def _account_url(credentials: TwilioCredentials, settings: TwilioSettings) -> str:
    base = settings.base_url.rstrip("/")
    return f"{base}/2010-04-01/Accounts/{credentials.account_sid}"
