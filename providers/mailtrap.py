"""Mailtrap Email Sending API: https://api-docs.mailtrap.io/docs/mailtrap-api-docs/67f1d70aeb62c-send-email

``POST https://send.api.mailtrap.io/api/send`` (the transactional stream; the bulk stream is
``https://bulk.api.mailtrap.io``) with ``Authorization: Bearer <API token>`` (``Api-Token`` is
documented as the same) and a JSON body: ``from`` and ``to`` (``{"email", "name"}``), ``subject``,
``text``, ``html``, ``category``, ``headers`` (``Reply-To``), ``custom_variables`` (echoed on
every webhook event) and ``attachments`` (``{"content", "filename", "type", "disposition"}``,
base64 content). Success is ``200 {"success": true, "message_ids": ["..."]}``, one id per
recipient: the first is the message's.

Failures are ``{"success": false, "errors": ["..."]}``: 400 a request to fix (an error naming
the ``to``/``cc``/``bcc`` address as invalid rejects the recipient), 401 a bad token, 403 a
sending domain not verified or an account without sending access, 429 the rate limit, 5xx a
fault of the service. The API takes no idempotency key and a sending token reaches no harmless
endpoint, so there is no check.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import Field, SecretStr

from providers.base import ChannelType, Credentials, Message
from providers.email_common import EmailSenderSettings, base64_text, body_parts, recipient_email
from providers.errors import MAX_DETAIL, RecipientError
from providers.http import ErrorClass, json_body
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.sms_common import one_line

DEFAULT_BASE_URL = "https://send.api.mailtrap.io"

#: "'to' address is invalid", "Invalid 'cc' email address"...
_RECIPIENT_ERROR = re.compile(r"'(to|cc|bcc)'.*invalid|invalid.*'(to|cc|bcc)'", re.IGNORECASE)


class MailtrapCredentials(Credentials):
    api_key: SecretStr


class MailtrapSettings(EmailSenderSettings):
    """``from_email`` must be on a sending domain verified in Mailtrap."""

    #: Groups the message in Mailtrap's statistics (255 characters at most).
    category: str | None = Field(default=None, max_length=255)
    #: ``https://bulk.api.mailtrap.io`` for the bulk stream, or a test server.
    base_url: str | None = None


class MailtrapProvider(HttpProvider[MailtrapCredentials, MailtrapSettings]):
    name = "mailtrap"
    display_name = "Mailtrap"
    channel = ChannelType.EMAIL
    credentials_model = MailtrapCredentials
    settings_model = MailtrapSettings
    returns_message_id = True
    message_id_key = "message_ids"
    supports_html = True
    # The API bounds the whole message (10 MB), not the number of files; this is our cap.
    max_attachments = 10

    @staticmethod
    def base_url(settings: MailtrapSettings) -> str:
        return (settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def build_request(
        self, message: Message, credentials: MailtrapCredentials, settings: MailtrapSettings
    ) -> HttpRequest:
        to_email = recipient_email(self.name, message)
        return HttpRequest(
            "POST",
            f"{self.base_url(settings)}/api/send",
            headers={"Authorization": f"Bearer {credentials.api_key.get_secret_value()}"},
            json=build_payload(message, to_email, settings),
        )

    def message_id(self, response: httpx.Response) -> str | None:
        ids = json_body(response).get("message_ids")
        return str(ids[0]) if isinstance(ids, list) and ids and ids[0] else None

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        errors = json_body(response).get("errors")
        if isinstance(errors, str):
            errors = [errors]
        if not isinstance(errors, list) or not errors:
            return None
        detail = one_line("; ".join(str(error) for error in errors))
        return ErrorCode(None, f"HTTP {response.status_code}: {detail}"[:MAX_DETAIL], detail)

    def error_class(self, code: ErrorCode, response: httpx.Response) -> ErrorClass | None:
        if response.status_code == 400 and _RECIPIENT_ERROR.search(code.detail):
            return RecipientError
        return super().error_class(code, response)


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def build_payload(message: Message, to_email: str, settings: MailtrapSettings) -> dict[str, Any]:
    """The documented send-email body for one recipient."""
    payload: dict[str, Any] = {
        "from": _address(settings.from_email, settings.from_name),
        "to": [_address(to_email, message.to.name)],
        "subject": message.subject or "",
        # Echoed on every webhook event, so events map back to the delivery.
        "custom_variables": {"delivery_id": message.delivery_id},
    }
    text, html = body_parts(message)
    if text is not None:
        payload["text"] = text
    if html is not None:
        payload["html"] = html
    if settings.category:
        payload["category"] = settings.category
    if settings.reply_to:
        payload["headers"] = {"Reply-To": settings.reply_to}
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
