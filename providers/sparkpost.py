"""SparkPost Transmissions: https://developers.sparkpost.com/api/transmissions/

``POST {base}/api/v1/transmissions`` with the API key as the whole ``Authorization`` header (no
scheme) and a JSON body: ``recipients`` (``[{"address": {"email", "name"}}]``), ``content``
(``from`` as ``{"email", "name"}``, ``subject``, ``text``, ``html``, ``reply_to``,
``attachments`` as ``{"name", "type", "data"}`` with base64 data) and ``metadata`` (echoed on every
webhook event). The base URL is ``https://api.sparkpost.com`` or, for an account registered
with SparkPost EU, ``https://api.eu.sparkpost.com`` (https://developers.sparkpost.com/api/).
Success is ``200 {"results": {"total_rejected_recipients", "total_accepted_recipients", "id"}}``;
the transmission ``id`` is what events carry as ``transmission_id``.

Failures are ``{"errors": [{"message", "description", "code"}]}`` with SparkPost's extended codes
(https://support.sparkpost.com/docs/tech-resources/extended-error-codes): 1100 permission denied
(403), 1900 message generation unavailable (503, retry), 1901 message failed to generate (a
template or content fault), 1902 message generation rejected (a single-recipient transmission
whose recipient SparkPost refuses: suppressed by policy, a bounce or unsubscribe on file), 5002
no valid recipients, 2101 hourly and 2103 sandbox sending limits (420), 7000/7001 a blacklisted
or invalid sending domain, and 429 for any rate-limited call. The API takes no idempotency key.
``GET /api/v1/account`` reads the account; a key without the "Account: Read" grant answers 403
with code 1100, which still proves the key is SparkPost's.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from providers.base import ChannelType, CheckResult, Credentials, Message
from providers.email_common import EmailSenderSettings, base64_text, body_parts, recipient_email
from providers.errors import (
    MAX_DETAIL,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import ErrorClass, json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.sms_common import one_line

BASE_URLS: Mapping[str, str] = MappingProxyType(
    {"us": "https://api.sparkpost.com", "eu": "https://api.eu.sparkpost.com"}
)

#: SparkPost's extended error codes a send may answer with; others go by HTTP status.
ERROR_CODES: Mapping[str, ErrorClass] = MappingProxyType(
    {
        "1100": IntegrationError,
        "1303": IntegrationError,
        "1304": IntegrationError,
        "1502": RetryableError,
        "1900": RetryableError,
        "1901": IntegrationError,
        "1902": RecipientError,
        "1910": IntegrationError,
        "2101": RetryableError,
        "2102": IntegrationError,
        "2103": IntegrationError,
        "5002": RecipientError,
        "7000": IntegrationError,
        "7001": IntegrationError,
    }
)


class SparkPostCredentials(Credentials):
    api_key: SecretStr


class SparkPostSettings(EmailSenderSettings):
    """``from_email`` must be on a verified sending domain of the account."""

    #: ``eu`` for an account registered with SparkPost EU (``api.eu.sparkpost.com``).
    region: Literal["us", "eu"] = "us"
    #: Overrides the regional base URL (an enterprise endpoint, a test server).
    base_url: str | None = None


class SparkPostProvider(HttpProvider[SparkPostCredentials, SparkPostSettings]):
    name = "sparkpost"
    display_name = "SparkPost"
    channel = ChannelType.EMAIL
    credentials_model = SparkPostCredentials
    settings_model = SparkPostSettings
    returns_message_id = True
    message_id_key = "results.id"
    supports_html = True
    # The API bounds the whole transmission (20 MB), not the number of files; this is our cap.
    max_attachments = 10
    error_codes = ERROR_CODES
    #: "420 Exceed Sending Limit": a limit of the account, told apart by its code.
    status_errors = MappingProxyType({420: IntegrationError})

    @staticmethod
    def base_url(settings: SparkPostSettings) -> str:
        return (settings.base_url or BASE_URLS[settings.region]).rstrip("/")

    def build_request(
        self, message: Message, credentials: SparkPostCredentials, settings: SparkPostSettings
    ) -> HttpRequest:
        to_email = recipient_email(self.name, message)
        return HttpRequest(
            "POST",
            f"{self.base_url(settings)}/api/v1/transmissions",
            headers=_auth_headers(credentials),
            json=build_payload(message, to_email, settings),
        )

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        """A 200 may still have rejected the one recipient (``total_rejected_recipients``)."""
        if not response.is_success:
            return self.classify(response)
        results = json_body(response).get("results")
        results = results if isinstance(results, dict) else {}
        if results.get("total_accepted_recipients") == 0 and results.get(
            "total_rejected_recipients"
        ):
            return RecipientError(
                self.name, "the recipient was rejected", status_code=response.status_code
            )
        return None

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        errors = json_body(response).get("errors")
        first = errors[0] if isinstance(errors, list) and errors else None
        if not isinstance(first, dict):
            return None
        code = str(first["code"]) if first.get("code") is not None else None
        detail = one_line(" ".join(str(first.get(key) or "") for key in ("message", "description")))
        text = f"HTTP {response.status_code}: {code or 'no code'}: {detail}"[:MAX_DETAIL]
        return ErrorCode(code, text, detail)

    async def check(
        self,
        credentials: SparkPostCredentials,
        settings: SparkPostSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{self.base_url(settings)}/api/v1/account",
            headers=_auth_headers(credentials),
        )
        if response.is_success:
            return CheckResult(ok=True, detail="API key valid")
        code = self.error_code(response)
        if response.status_code == 403 and code is not None and code.code == "1100":
            return CheckResult(ok=True, detail="API key valid (no Account: Read grant)")
        return CheckResult(ok=False, detail=str(self.classify(response)))


def _auth_headers(credentials: SparkPostCredentials) -> dict[str, str]:
    return {"Authorization": credentials.api_key.get_secret_value()}


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def build_payload(message: Message, to_email: str, settings: SparkPostSettings) -> dict[str, Any]:
    """The documented transmission body for one recipient with inline content."""
    content: dict[str, Any] = {
        "from": _address(settings.from_email, settings.from_name),
        "subject": message.subject or "",
    }
    text, html = body_parts(message)
    if text is not None:
        content["text"] = text
    if html is not None:
        content["html"] = html
    if settings.reply_to:
        content["reply_to"] = settings.reply_to
    if message.attachments:
        content["attachments"] = [
            {
                "name": attachment.filename,
                "type": attachment.content_type,
                "data": base64_text(attachment.content),
            }
            for attachment in message.attachments
        ]
    return {
        "recipients": [{"address": _address(to_email, message.to.name)}],
        "content": content,
        # Echoed on every webhook event, so events map back to the delivery.
        "metadata": {"delivery_id": message.delivery_id},
    }
