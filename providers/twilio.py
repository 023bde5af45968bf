"""Twilio Programmable Messaging: https://www.twilio.com/docs/messaging/api/message-resource

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` on ``https://api.twilio.com`` with HTTP
basic auth (Account SID and Auth Token) and a form-encoded body: ``To`` (E.164), ``Body``, and
``From`` or ``MessagingServiceSid`` (or both), optional ``StatusCallback``. A 201 answer is the
Message resource; its ``sid`` (``SM...``) is the message id. Errors are
``{"code", "message", "more_info", "status"}`` with Twilio's numeric code
(https://www.twilio.com/docs/api/errors): 21211 invalid 'To' number, 21610 recipient replied
STOP, 20003 authentication failed (HTTP 401), 20429 too many requests (HTTP 429). The Messages
API takes no idempotency key. ``GET /2010-04-01/Accounts/{AccountSid}.json`` reads the account
(``status``: active, suspended or closed) without sending anything. Status callbacks, signed
with the Auth Token, are verified and read by :mod:`providers.twilio_callbacks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import httpx
from pydantic import Field, SecretStr, model_validator

from providers.base import (
    ChannelType,
    CheckResult,
    Credentials,
    Message,
    RateLimitSettings,
)
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
from providers.twilio_callbacks import parse_status_callback

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


class TwilioProvider(HttpProvider[TwilioCredentials, TwilioSettings]):
    name = "twilio"
    display_name = "Twilio SMS"
    channel = ChannelType.SMS
    credentials_model = TwilioCredentials
    settings_model = TwilioSettings
    returns_message_id = True
    message_id_key = "sid"
    #: "Body ... can be up to 1,600 characters in length."
    max_body_length = 1600
    supports_callbacks = True
    #: The Twilio error codes this sender's answers are read with (a subclass adds its own).
    twilio_codes: ClassVar[CodeTable] = ERROR_CODES

    def build_request(
        self, message: Message, credentials: TwilioCredentials, settings: TwilioSettings
    ) -> HttpRequest:
        return HttpRequest(
            "POST",
            f"{_account_url(credentials, settings)}/Messages.json",
            auth=_auth(credentials),
            data=self.form(message, settings),
        )

    def form(self, message: Message, settings: TwilioSettings) -> dict[str, str]:
        """The Create Message form of ``message``; the hook a sender on another Twilio channel
        (WhatsApp) overrides, keeping the request, check and error reading of this one."""
        return build_form(message, recipient_number(self.name, message), settings)

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
        if not response.is_success:
            return CheckResult(ok=False, detail=str(self.classify(response)))
        status = str(json_body(response).get("status") or "unknown")
        if status != "active":
            return CheckResult(ok=False, detail=f"account status is {status}, not active")
        return CheckResult(ok=True, detail="account active")

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: TwilioCredentials,
        settings: TwilioSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """A status callback, signed with the Auth Token (:mod:`providers.twilio_callbacks`)."""
        return parse_status_callback(request, credentials.auth_token.get_secret_value())

    def classify(self, response: httpx.Response) -> ProviderError:
        code = self.error_code(response)
        known = code and code_error(
            self.name, self.twilio_codes, str(code.code), code.detail, response
        )
        return known or self.coded_error(response, code)

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        body = json_body(response)
        if body.get("code") is None:
            return None
        code, detail = str(body["code"]), one_line(body.get("message") or "")
        return ErrorCode(code, f"HTTP {response.status_code}: {code}: {detail}", detail)


def build_form(
    message: Message,
    to: str,
    settings: TwilioSettings,
    *,
    content: Mapping[str, str] | None = None,
    provider: str = "twilio",
) -> dict[str, str]:
    """The documented Create Message form for one recipient: the message's text as ``Body``,
    or ``content`` (a Content template's ``ContentSid`` and ``ContentVariables``) instead."""
    form = {"To": to}
    if content:
        form.update(content)
    else:
        form["Body"] = message_text(provider, message)
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
