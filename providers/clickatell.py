"""Clickatell Platform (One API) SMS: https://docs.clickatell.com/channels/sms-channels/sms-api-reference/

``POST https://platform.clickatell.com/v1/message`` with the integration's API key as the whole
``Authorization`` header (no scheme) and JSON ``{"messages": [{"channel": "sms", "to":
"<digits>", "content": "...", "from": "<sender>"}]}``: the number without its ``+``, ``from``
only when the integration has a two-way number of its own. A 202 answers ``{"messages":
[{"apiMessageId", "accepted", "to", "error"}], "error": null}``: ``apiMessageId`` is the message
id, and a message the gateway did not accept (``accepted: false``) carries its own ``error``
inside the 202; a request refused whole carries the top-level ``error``. Either is ``{"code",
"description"}`` with Clickatell's numeric code:

* 25 invalid recipient address, 26 opted out, 27 not reachable on the channel, 28 not a
  sandbox-approved number, 24 and 100 content too long, 101 the destination takes no two-way
  messages: the recipient's;
* 1 invalid API key, 2 and 3 account or integration inactive, 7 IP address not approved, 20
  insufficient balance, 21-23 malformed request, 38 and 39 channel not active, 44 and 45 the
  ``from`` number suspended or not this integration's, 46 demo expired, 110 and 111 the US
  two-way rules: the integration's;
* 18 and 19 internal errors and 43 rate limit are retried.

The API takes no idempotency key, and has no endpoint that checks a key without sending.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import httpx
from pydantic import Field, SecretStr

from providers.base import ChannelType, Credentials, Message, RateLimitSettings
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.http import ErrorClass, json_body
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.sms_common import message_text, msisdn, one_line, recipient_number

DEFAULT_BASE_URL = "https://platform.clickatell.com"

_RECIPIENT = ("24", "25", "26", "27", "28", "100", "101")
_INTEGRATION = (
    "1", "2", "3", "7", "20", "21", "22", "23", "38", "39", "40", "44", "45", "46", "110", "111",
)  # fmt: skip
_RETRYABLE = ("18", "19", "43")

#: Clickatell's error codes and the class each means, whatever the HTTP status says.
ERROR_CODES: MappingProxyType[str, ErrorClass] = MappingProxyType(
    {
        **dict.fromkeys(_RECIPIENT, RecipientError),
        **dict.fromkeys(_INTEGRATION, IntegrationError),
        **dict.fromkeys(_RETRYABLE, RetryableError),
    }
)


class ClickatellCredentials(Credentials):
    #: The API key of a Platform integration with the SMS channel.
    api_key: SecretStr


class ClickatellSettings(RateLimitSettings):
    #: A two-way number of the integration (digits), sent as ``from``; one-way integrations
    #: send from Clickatell's shared numbers and leave it unset.
    from_number: str | None = Field(default=None, pattern=r"^\+?[1-9]\d{3,14}$")
    #: Override for a test server or a proxy.
    base_url: str = DEFAULT_BASE_URL


class ClickatellProvider(HttpProvider[ClickatellCredentials, ClickatellSettings]):
    name = "clickatell"
    display_name = "Clickatell SMS"
    channel = ChannelType.SMS
    credentials_model = ClickatellCredentials
    settings_model = ClickatellSettings
    returns_message_id = True
    error_codes = ERROR_CODES

    def build_request(
        self, message: Message, credentials: ClickatellCredentials, settings: ClickatellSettings
    ) -> HttpRequest:
        entry: dict[str, Any] = {
            "channel": "sms",
            "to": msisdn(recipient_number(self.name, message)),
            "content": message_text(self.name, message),
        }
        if settings.from_number:
            entry["from"] = settings.from_number.removeprefix("+")
        return HttpRequest(
            "POST",
            f"{settings.base_url.rstrip('/')}/v1/message",
            headers={
                "Authorization": credentials.api_key.get_secret_value(),
                "Accept": "application/json",
            },
            json={"messages": [entry]},
        )

    def message_id(self, response: httpx.Response) -> str | None:
        entry = _first_message(response)
        message_id = entry.get("apiMessageId") if entry else None
        return str(message_id) if message_id else None

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        if not response.is_success:
            return self.classify(response)
        entry = _first_message(response)
        if entry is not None and entry.get("accepted") is False:
            # Refused inside a 202: classified by its code alone (the status says accepted).
            code = self.error_code(response)
            error_class = (self.error_class(code, response) if code else None) or IntegrationError
            return self.coded_error(response, code, error_class)
        return None

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        body = json_body(response)
        error = body.get("error")
        entry = _first_message(response)
        if not isinstance(error, dict) and entry is not None:
            error = entry.get("error")
        if not isinstance(error, dict) or error.get("code") is None:
            return None
        code, detail = str(error["code"]), one_line(error.get("description") or "")
        return ErrorCode(code, f"HTTP {response.status_code}: {code}: {detail}", detail)


def _first_message(response: httpx.Response) -> dict[str, Any] | None:
    messages = json_body(response).get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        return messages[0]
    return None
