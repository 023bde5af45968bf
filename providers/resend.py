"""Resend Send Email: https://resend.com/docs/api-reference/emails/send-email

``POST https://api.resend.com/emails`` with ``Authorization: Bearer <api key>``, an
``Idempotency-Key`` header (1-256 characters, kept 24 hours: a retried delivery is sent once) and
a JSON body: ``from`` and ``to`` (``Name <address>``), ``subject``, ``text``, ``html``,
``reply_to``, ``attachments`` (``filename``, base64 ``content``, ``content_type``) and ``tags``
(``name``/``value`` of ASCII letters, digits, ``_`` and ``-``). Success is ``200 {"id": "..."}``.

Failures are ``{"statusCode", "name", "message"}`` (https://resend.com/docs/api-reference/errors):
``missing_api_key``/``restricted_api_key`` 401, ``invalid_api_key`` 403, ``validation_error``
400/422 (the message names the field: "Invalid `to` field..." rejects the recipient) or 403
("You can only send testing emails to your own email address", an unverified domain),
``invalid_from_address`` 422, ``invalid_idempotent_request`` 409 (same key, other payload),
``concurrent_idempotent_requests`` 409 (retry), ``rate_limit_exceeded`` 429 with
``retry-after``, ``daily_quota_exceeded``/``monthly_quota_exceeded`` 429 (the integration is
spent: fall back), ``security_error`` 451, ``application_error``/``internal_server_error`` 500.
``GET /domains`` checks the key; a sending-only key answers ``restricted_api_key``, which still
proves it valid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import httpx
from pydantic import SecretStr, field_validator

from providers import resend_callbacks
from providers.base import ChannelType, CheckResult, Credentials, Message
from providers.callbacks import CallbackRequest, ParsedCallback
from providers.email_common import (
    EmailSenderSettings,
    base64_text,
    body_parts,
    display_address,
    recipient_email,
    tag_value,
)
from providers.errors import MAX_DETAIL, IntegrationError, RecipientError, RetryableError
from providers.http import ErrorClass, json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest

DEFAULT_BASE_URL = "https://api.resend.com"

#: Error names that settle the outcome whatever the HTTP status.
ERROR_NAMES: Mapping[str, ErrorClass] = MappingProxyType(
    {
        "missing_api_key": IntegrationError,
        "restricted_api_key": IntegrationError,
        "invalid_api_key": IntegrationError,
        "invalid_from_address": IntegrationError,
        "invalid_idempotency_key": IntegrationError,
        "invalid_idempotent_request": IntegrationError,
        "concurrent_idempotent_requests": RetryableError,
        "daily_quota_exceeded": IntegrationError,
        "monthly_quota_exceeded": IntegrationError,
        "rate_limit_exceeded": RetryableError,
        "security_error": IntegrationError,
        "application_error": RetryableError,
        "internal_server_error": RetryableError,
    }
)

#: "Invalid `to` field. The email address needs to follow the `email@example.com` or
#: `Name <email@example.com>` format.", "The `to` field must be...", "`cc`...".
_RECIPIENT_FIELD = re.compile(r"`(to|cc|bcc)`", re.IGNORECASE)


class ResendCredentials(Credentials):
    api_key: SecretStr
    #: The webhook's signing secret (``whsec_...``); without it every delivery callback is
    #: refused.
    webhook_secret: SecretStr | None = None

    @field_validator("webhook_secret")
    @classmethod
    def _is_a_signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            resend_callbacks.secret_key(value.get_secret_value())
        return value


class ResendSettings(EmailSenderSettings):
    #: ``from_email`` must be on a domain verified in Resend.
    base_url: str | None = None


class ResendProvider(HttpProvider[ResendCredentials, ResendSettings]):
    name = "resend"
    display_name = "Resend"
    channel = ChannelType.EMAIL
    credentials_model = ResendCredentials
    settings_model = ResendSettings
    returns_message_id = True
    message_id_key = "id"
    supports_html = True
    supports_idempotency_key = True
    # The API bounds the whole message (40 MB after base64), not the number of files.
    max_attachments = 10
    #: Resend's default limit per team is 2 requests per second.
    rate_limit_per_second = 2.0
    error_codes = ERROR_NAMES
    supports_callbacks = True

    @staticmethod
    def base_url(settings: ResendSettings) -> str:
        return (settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def build_request(
        self, message: Message, credentials: ResendCredentials, settings: ResendSettings
    ) -> HttpRequest:
        to_email = recipient_email(self.name, message)
        return HttpRequest(
            "POST",
            f"{self.base_url(settings)}/emails",
            headers={
                **_auth_headers(credentials),
                "Idempotency-Key": message.idempotency_key[:256],
            },
            json=build_payload(message, to_email, settings),
        )

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        body = json_body(response)
        name = str(body.get("name") or "")
        detail = str(body.get("message") or "")
        return ErrorCode(name, f"{name}: {detail}"[:MAX_DETAIL], detail) if name else None

    def error_class(self, code: ErrorCode, response: httpx.Response) -> ErrorClass | None:
        if code.code == "validation_error" and response.status_code in (400, 422):
            return RecipientError if _RECIPIENT_FIELD.search(code.detail) else IntegrationError
        return super().error_class(code, response)

    async def check(
        self,
        credentials: ResendCredentials,
        settings: ResendSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{self.base_url(settings)}/domains",
            headers=_auth_headers(credentials),
        )
        if json_body(response).get("name") == "restricted_api_key":
            return CheckResult(ok=True, detail="API key valid (sending access only)")
        if not response.is_success:
            return CheckResult(ok=False, detail=str(self.classify(response)))
        domain = settings.from_email.rpartition("@")[2].lower()
        for entry in json_body(response).get("data") or []:
            if isinstance(entry, dict) and str(entry.get("name", "")).lower() == domain:
                status = entry.get("status")
                return CheckResult(ok=status == "verified", detail=f"domain {domain}: {status}")
        return CheckResult(ok=False, detail=f"domain {domain} is not added to this Resend account")

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: ResendCredentials,
        settings: ResendSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """One Svix-signed webhook event (:mod:`providers.resend_callbacks`)."""
        return resend_callbacks.parse(self.name, request, credentials.webhook_secret)


def _auth_headers(credentials: ResendCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.api_key.get_secret_value()}"}


def build_payload(message: Message, to_email: str, settings: ResendSettings) -> dict[str, Any]:
    """The documented Send Email body for one recipient."""
    payload: dict[str, Any] = {
        "from": display_address(settings.from_email, settings.from_name),
        "to": [display_address(to_email, message.to.name)],
        "subject": message.subject or "",
        # Tags come back on every webhook event.
        "tags": [{"name": "delivery_id", "value": tag_value(message.delivery_id)}],
    }
    text, html = body_parts(message)
    if text is not None:
        payload["text"] = text
    if html is not None:
        payload["html"] = html
    if settings.reply_to:
        payload["reply_to"] = [settings.reply_to]
    if message.attachments:
        payload["attachments"] = [
            {
                "filename": attachment.filename,
                "content": base64_text(attachment.content),
                "content_type": attachment.content_type,
            }
            for attachment in message.attachments
        ]
    return payload
