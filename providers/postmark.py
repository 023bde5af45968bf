"""Postmark Email API: https://postmarkapp.com/developer/api/email-api

``POST https://api.postmarkapp.com/email`` with the ``X-Postmark-Server-Token`` header and a JSON
message (``From``, ``To``, ``Subject``, ``TextBody``, ``HtmlBody``, ``ReplyTo``, ``MessageStream``,
``Attachments``, ``Metadata``). Success answers ``{"ErrorCode": 0, "MessageID": ...}``. Failures
carry ``{"ErrorCode": N, "Message": ...}`` (https://postmarkapp.com/developer/api/overview#error-codes):
401 for a bad token (code 10), 422 for a rejected message, 429 for the rate limit, 5xx otherwise.
``GET /server`` reads the server behind the token without sending anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import httpx
from pydantic import SecretStr

from providers import postmark_callbacks
from providers.base import ChannelType, CheckResult, Credentials, Message
from providers.callbacks import CallbackRequest, ParsedCallback
from providers.email_common import (
    EmailSenderSettings,
    base64_text,
    body_parts,
    display_address,
    recipient_email,
)
from providers.errors import (
    MAX_DETAIL,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import ErrorClass, json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest

DEFAULT_BASE_URL = "https://api.postmarkapp.com"

#: Postmark API error codes that settle the outcome whatever the HTTP status (but 429 and 5xx,
#: which are retried whatever the code).
ERROR_CODES: Mapping[str, ErrorClass] = MappingProxyType(
    {
        "10": IntegrationError,  # Bad or missing API token
        "100": RetryableError,  # Maintenance
        "400": IntegrationError,  # Sender signature not found
        "401": IntegrationError,  # Sender signature not confirmed
        "405": IntegrationError,  # Not allowed to send (account out of credits)
        "406": RecipientError,  # Inactive recipient (hard bounce, spam complaint, suppression)
        "412": IntegrationError,  # Account is pending
        "413": IntegrationError,  # Account may not send
        "429": RetryableError,  # Rate limit exceeded
    }
)

#: Code 300 "Invalid email request" covers any malformed field; the message names the field:
#: "Error parsing 'To': Illegal email address 'ada'..." or "Invalid 'To' address: ...".
_RECIPIENT_FIELD = re.compile(r"'(to|cc|bcc)'", re.IGNORECASE)


class PostmarkCredentials(Credentials):
    server_token: SecretStr
    #: The HTTP basic auth pair put in the webhooks' URL; without the password every delivery
    #: callback is refused.
    webhook_username: str | None = None
    webhook_password: SecretStr | None = None


class PostmarkSettings(EmailSenderSettings):
    #: ``from_email`` must be a confirmed sender signature or on a verified domain.
    message_stream: str = "outbound"
    base_url: str | None = None


class PostmarkProvider(HttpProvider[PostmarkCredentials, PostmarkSettings]):
    name = "postmark"
    display_name = "Postmark"
    channel = ChannelType.EMAIL
    credentials_model = PostmarkCredentials
    settings_model = PostmarkSettings
    returns_message_id = True
    message_id_key = "MessageID"
    supports_html = True
    # The API bounds the whole message (10 MB), not the number of files; this is our cap.
    max_attachments = 10
    error_codes = ERROR_CODES
    supports_callbacks = True

    @staticmethod
    def base_url(settings: PostmarkSettings) -> str:
        return (settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def build_request(
        self, message: Message, credentials: PostmarkCredentials, settings: PostmarkSettings
    ) -> HttpRequest:
        to_email = recipient_email(self.name, message)
        return HttpRequest(
            "POST",
            f"{self.base_url(settings)}/email",
            headers=_headers(credentials),
            json=build_payload(message, to_email, settings),
        )

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        if response.is_success and json_body(response).get("ErrorCode", 0) == 0:
            return None
        return self.classify(response)

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        status = response.status_code
        if status == 429 or status >= 500:
            return None
        body = json_body(response)
        code = body.get("ErrorCode")
        if not isinstance(code, int):
            return None
        detail = str(body.get("Message") or "")
        return ErrorCode(str(code), f"ErrorCode {code}: {detail}"[:MAX_DETAIL], detail)

    def error_class(self, code: ErrorCode, response: httpx.Response) -> ErrorClass | None:
        if code.code == "300":
            return RecipientError if _RECIPIENT_FIELD.search(code.detail) else IntegrationError
        return super().error_class(code, response)

    async def check(
        self,
        credentials: PostmarkCredentials,
        settings: PostmarkSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{self.base_url(settings)}/server",
            headers=_headers(credentials),
        )
        if response.is_success:
            server = json_body(response).get("Name")
            return CheckResult(ok=True, detail=f"server token valid (server {server!r})")
        return CheckResult(ok=False, detail=str(self.classify(response)))

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: PostmarkCredentials,
        settings: PostmarkSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """One webhook record (:mod:`providers.postmark_callbacks`)."""
        return postmark_callbacks.parse(
            self.name, request, credentials.webhook_username, credentials.webhook_password
        )


def _headers(credentials: PostmarkCredentials) -> dict[str, str]:
    return {
        "Accept": "application/json",
        "X-Postmark-Server-Token": credentials.server_token.get_secret_value(),
    }


def build_payload(message: Message, to_email: str, settings: PostmarkSettings) -> dict[str, Any]:
    """The documented single-email body."""
    payload: dict[str, Any] = {
        "From": display_address(settings.from_email, settings.from_name),
        "To": display_address(to_email, message.to.name),
        "Subject": message.subject or "",
        "MessageStream": settings.message_stream,
        # Metadata comes back on bounce/delivery webhooks.
        "Metadata": {"delivery_id": message.delivery_id},
    }
    text, html = body_parts(message)
    if text is not None:
        payload["TextBody"] = text
    if html is not None:
        payload["HtmlBody"] = html
    if settings.reply_to:
        payload["ReplyTo"] = settings.reply_to
    if message.attachments:
        payload["Attachments"] = [
            {
                "Name": attachment.filename,
                "Content": base64_text(attachment.content),
                "ContentType": attachment.content_type,
            }
            for attachment in message.attachments
        ]
    return payload
