"""Twilio SendGrid v3 Mail Send: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send

``POST {base}/v3/mail/send`` with ``Authorization: Bearer <api key>``; a 202 carries the message id
in the ``X-Message-Id`` response header and no body. Every validation error is a 400 with
``{"errors": [{"message", "field", "help"}]}``; a ``field`` under ``personalizations.N.to`` (or cc,
bcc) names the recipient. ``GET /v3/scopes`` lists the key's scopes without sending anything.

``subject`` must not be empty (``minLength: 1``): an empty one is a 400 that would fail the
integration over and over, so a message without a subject gets the first non-blank line of its
text body, cut at 78 characters (RFC 5322's recommended line length), or ``(no subject)`` when it
has no text.

``custom_args`` goes on the personalization: the document types the message-level one as a string
and the personalization's as the object we send; there is one personalization, so the two are the
same for the event webhook, which echoes them on every event.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx
from pydantic import SecretStr, field_validator

from providers import sendgrid_callbacks
from providers.base import ChannelType, CheckResult, Credentials, Message
from providers.callbacks import CallbackRequest, ParsedCallback
from providers.email_common import (
    EmailSenderSettings,
    base64_text,
    body_parts,
    recipient_email,
)
from providers.errors import MAX_DETAIL, RecipientError
from providers.http import ErrorClass, classify_status, json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest

BASE_URLS: dict[str, str] = {
    "global": "https://api.sendgrid.com",
    "eu": "https://api.eu.sendgrid.com",
}

#: What a message without a subject or text is sent with.
NO_SUBJECT = "(no subject)"
#: RFC 5322's recommended line length: a subject made from the body is cut there.
MAX_FALLBACK_SUBJECT = 78

#: ``personalizations.0.to.0.email``, ``personalizations.0.to``, ``personalizations.1.cc.0``...
_RECIPIENT_FIELD = re.compile(r"^personalizations(\.\d+)?\.(to|cc|bcc)\b")


class SendGridCredentials(Credentials):
    api_key: SecretStr
    #: The Signed Event Webhook's verification key: the base64 public key SendGrid shows.
    #: Without it every delivery callback is refused.
    webhook_verification_key: str | None = None

    @field_validator("webhook_verification_key")
    @classmethod
    def _is_a_p256_key(cls, value: str | None) -> str | None:
        if value is not None:
            sendgrid_callbacks.load_verification_key(value)
        return value


class SendGridSettings(EmailSenderSettings):
    #: ``eu`` for EU regional subusers (``api.eu.sendgrid.com``).
    region: Literal["global", "eu"] = "global"
    #: Overrides the regional base URL (a proxy, a test server).
    base_url: str | None = None


class SendGridProvider(HttpProvider[SendGridCredentials, SendGridSettings]):
    name = "sendgrid"
    display_name = "Twilio SendGrid"
    channel = ChannelType.EMAIL
    credentials_model = SendGridCredentials
    settings_model = SendGridSettings
    returns_message_id = True
    supports_html = True
    # The API bounds the whole message (30 MB), not the number of files; this is our cap.
    max_attachments = 10
    supports_callbacks = True

    @staticmethod
    def base_url(settings: SendGridSettings) -> str:
        return (settings.base_url or BASE_URLS[settings.region]).rstrip("/")

    def build_request(
        self, message: Message, credentials: SendGridCredentials, settings: SendGridSettings
    ) -> HttpRequest:
        to_email = recipient_email(self.name, message)
        return HttpRequest(
            "POST",
            f"{self.base_url(settings)}/v3/mail/send",
            headers=_auth_headers(credentials),
            json=build_payload(message, to_email, settings),
        )

    def message_id(self, response: httpx.Response) -> str | None:
        message_id: str | None = response.headers.get("x-message-id")
        return message_id

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        """The first field of a 400 that names a recipient; other errors go by status."""
        if response.status_code != 400:
            return None
        for error in json_body(response).get("errors") or []:
            field = str(error.get("field") or "") if isinstance(error, dict) else ""
            if _RECIPIENT_FIELD.match(field):
                detail = str(error.get("message") or "invalid recipient")
                return ErrorCode(field, f"{field}: {detail}"[:MAX_DETAIL])
        return None

    def error_class(self, code: ErrorCode, response: httpx.Response) -> ErrorClass | None:
        return RecipientError if _RECIPIENT_FIELD.match(code.code or "") else None

    async def check(
        self,
        credentials: SendGridCredentials,
        settings: SendGridSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{self.base_url(settings)}/v3/scopes",
            headers=_auth_headers(credentials),
        )
        if not response.is_success:
            return CheckResult(ok=False, detail=str(classify_status(self.name, response)))
        scopes = json_body(response).get("scopes") or []
        if "mail.send" not in scopes:
            return CheckResult(ok=False, detail="the API key lacks the mail.send scope")
        return CheckResult(ok=True, detail="API key valid with mail.send scope")

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: SendGridCredentials,
        settings: SendGridSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """The Event Webhook's batch (:mod:`providers.sendgrid_callbacks`)."""
        return sendgrid_callbacks.parse(self.name, request, credentials.webhook_verification_key)


def _auth_headers(credentials: SendGridCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.api_key.get_secret_value()}"}


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def subject_line(message: Message, text: str | None) -> str:
    """``message.subject``, else the first non-blank line of ``text`` (cut), else ``NO_SUBJECT``."""
    if message.subject and message.subject.strip():
        return message.subject
    first = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    if len(first) > MAX_FALLBACK_SUBJECT:
        first = first[: MAX_FALLBACK_SUBJECT - 1].rstrip() + "…"
    return first or NO_SUBJECT


def build_payload(message: Message, to_email: str, settings: SendGridSettings) -> dict[str, Any]:
    """The documented Mail Send body for one recipient."""
    text, html = body_parts(message)
    content: list[dict[str, str]] = []
    # text/plain must come first, then text/html.
    if text is not None:
        content.append({"type": "text/plain", "value": text})
    if html is not None:
        content.append({"type": "text/html", "value": html})
    payload: dict[str, Any] = {
        "personalizations": [
            {
                "to": [_address(to_email, message.to.name)],
                # Echoed on every event webhook, so events map back to the delivery.
                "custom_args": {"delivery_id": message.delivery_id},
            }
        ],
        "from": _address(settings.from_email, settings.from_name),
        "subject": subject_line(message, text),
        "content": content,
    }
    if settings.reply_to:
        payload["reply_to"] = {"email": settings.reply_to}
    if message.attachments:
        payload["attachments"] = [
            {
                "content": base64_text(attachment.content),
                "filename": attachment.filename,
                "type": attachment.content_type,
                "disposition": "attachment",
            }
            for attachment in message.attachments
        ]
    return payload
