"""MailerSend Email API: https://developers.mailersend.com/api/v1/email.html#send-an-email

``POST https://api.mailersend.com/v1/email`` with ``Authorization: Bearer <API token>`` and a JSON
body: ``from`` and ``to`` (``{"email", "name"}``), ``subject``, ``text``, ``html``, ``reply_to``,
``attachments`` (``{"content", "filename", "disposition"}``, base64 content) and ``tags``. A
``202 Accepted`` carries the message id in the ``X-Message-Id`` header and no body, or, when
recipients are suppressed, ``{"warnings": [{"type", "warning", "recipients": [{"email",
"reasons"}]}]}``: ``ALL_SUPPRESSED`` means nobody was sent the email (the one recipient is on a
suppression list: a hard bounce, a complaint, an unsubscribe, a blocklist).

Errors (https://developers.mailersend.com/general.html, "Validation errors", "Rate limits",
"Daily request quota") are ``{"message", "errors": {"<field>": ["..."]}}``; the message ends
with MailerSend's ``#MS...`` code. A 422 whose field is ``to.N...`` (or ``cc``/``bcc``) rejects
the recipient (MS42208 "must be a valid email address"); others are the integration's (MS42207
unverified ``from.email`` domain, MS42204 and MS42222 spent email quotas). 401 is a bad token,
403 a token without the email scope or an account switched off (MS40301-MS40305). A 429 is
either the per-minute rate limit (MS42903; ``Retry-After`` seconds, and ``X-RateLimit-Reset``
as a Unix time) or the daily request quota (MS42901; ``X-ApiQuota-Reset`` at midnight UTC), which
spends the integration for the day: the next integration is tried. The API takes no
idempotency key. ``GET /v1/api-quota`` reads the quota without counting against it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import httpx
from pydantic import SecretStr

from providers.base import ChannelType, CheckResult, Credentials, Message
from providers.email_common import (
    EmailSenderSettings,
    base64_text,
    body_parts,
    recipient_email,
    tag_value,
)
from providers.errors import (
    MAX_DETAIL,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import ErrorClass, json_body, retry_after_header, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.retry_after import bounded_wait
from providers.sms_common import one_line

DEFAULT_BASE_URL = "https://api.mailersend.com"

#: MailerSend's ``#MS`` codes that settle the outcome whatever the status.
ERROR_CODES: Mapping[str, ErrorClass] = MappingProxyType(
    {
        "MS40301": IntegrationError,
        "MS40302": IntegrationError,
        "MS40303": IntegrationError,
        "MS40304": IntegrationError,
        "MS40305": IntegrationError,
        "MS42204": IntegrationError,
        "MS42207": IntegrationError,
        "MS42222": IntegrationError,
        "MS42225": IntegrationError,
        "MS42901": IntegrationError,
        "MS42903": RetryableError,
    }
)

#: ``#MS42208`` at the end of a message.
_CODE = re.compile(r"#(MS\d+)\b")
#: ``to``, ``to.0.email``, ``cc.1.email``...
_RECIPIENT_FIELD = re.compile(r"^(to|cc|bcc)(\.|$)")


class MailerSendCredentials(Credentials):
    api_key: SecretStr


class MailerSendSettings(EmailSenderSettings):
    """``from_email`` must be on a domain verified in MailerSend."""

    base_url: str | None = None


class MailerSendProvider(HttpProvider[MailerSendCredentials, MailerSendSettings]):
    name = "mailersend"
    display_name = "MailerSend"
    channel = ChannelType.EMAIL
    credentials_model = MailerSendCredentials
    settings_model = MailerSendSettings
    returns_message_id = True
    supports_html = True
    # The API bounds attachments by size (25 MB), not by number; this is our cap.
    max_attachments = 10
    #: "Email: 120 requests per minute" for the account.
    rate_limit_per_second = 2.0
    error_codes = ERROR_CODES

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    @staticmethod
    def base_url(settings: MailerSendSettings) -> str:
        return (settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def build_request(
        self, message: Message, credentials: MailerSendCredentials, settings: MailerSendSettings
    ) -> HttpRequest:
        to_email = recipient_email(self.name, message)
        return HttpRequest(
            "POST",
            f"{self.base_url(settings)}/v1/email",
            headers=_auth_headers(credentials),
            json=build_payload(message, to_email, settings),
        )

    def message_id(self, response: httpx.Response) -> str | None:
        message_id: str | None = response.headers.get("x-message-id")
        return message_id

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        """A 202 whose warnings say every recipient was suppressed sent nothing."""
        if not response.is_success:
            return self.classify(response)
        for warning in json_body(response).get("warnings") or []:
            if isinstance(warning, dict) and warning.get("type") == "ALL_SUPPRESSED":
                reasons = sorted(
                    {
                        str(reason)
                        for entry in warning.get("recipients") or []
                        if isinstance(entry, dict)
                        for reason in entry.get("reasons") or []
                    }
                )
                detail = f" ({', '.join(reasons)})" if reasons else ""
                return RecipientError(
                    self.name,
                    f"the recipient is suppressed{detail}",
                    status_code=response.status_code,
                    provider_code="ALL_SUPPRESSED",
                )
        return None

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        body = json_body(response)
        message = one_line(body.get("message") or "")
        errors = body.get("errors")
        fields = list(errors) if isinstance(errors, dict) else []
        recipient_field = next((field for field in fields if _RECIPIENT_FIELD.match(field)), None)
        found = _CODE.search(message)
        if recipient_field is not None and response.status_code == 422:
            code = recipient_field
        elif found is not None:
            code = found.group(1)
        else:
            return None
        return ErrorCode(code, f"HTTP {response.status_code}: {message}"[:MAX_DETAIL], message)

    def error_class(self, code: ErrorCode, response: httpx.Response) -> ErrorClass | None:
        if code.code is not None and _RECIPIENT_FIELD.match(code.code):
            return RecipientError
        return super().error_class(code, response)

    def retry_after(self, response: httpx.Response) -> float | None:
        """``Retry-After``, else the rate limit window's ``X-RateLimit-Reset`` (a Unix time)."""
        wait = retry_after_header(response)
        if wait is not None:
            return wait
        reset = response.headers.get("x-ratelimit-reset", "")
        if reset.isdigit():
            return bounded_wait(max(0.0, int(reset) - self._clock()))
        return None

    async def check(
        self,
        credentials: MailerSendCredentials,
        settings: MailerSendSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{self.base_url(settings)}/v1/api-quota",
            headers=_auth_headers(credentials),
        )
        if not response.is_success:
            return CheckResult(ok=False, detail=str(self.classify(response)))
        body = json_body(response)
        remaining = body.get("remaining")
        return CheckResult(ok=True, detail=f"API token valid; {remaining} requests left today")


def _auth_headers(credentials: MailerSendCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.api_key.get_secret_value()}"}


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def build_payload(message: Message, to_email: str, settings: MailerSendSettings) -> dict[str, Any]:
    """The documented send-an-email body for one recipient."""
    payload: dict[str, Any] = {
        "from": _address(settings.from_email, settings.from_name),
        "to": [_address(to_email, message.to.name)],
        "subject": message.subject or "",
        # Tags come back on every webhook event.
        "tags": [tag_value(f"delivery-{message.delivery_id}")],
    }
    text, html = body_parts(message)
    if text is not None:
        payload["text"] = text
    if html is not None:
        payload["html"] = html
    if settings.reply_to:
        payload["reply_to"] = {"email": settings.reply_to}
    if message.attachments:
        payload["attachments"] = [
            {
                "content": base64_text(attachment.content),
                "filename": attachment.filename,
                "disposition": "attachment",
            }
            for attachment in message.attachments
        ]
    return payload
