"""Mailjet Send API v3.1: https://dev.mailjet.com/email/guides/send-api-v31/

``POST https://api.mailjet.com/v3.1/send`` with HTTP basic auth (API key as user, secret key as
password) and ``{"Messages": [...]}``; each message has ``From`` and ``To`` (``{"Email",
"Name"}``), ``Subject``, ``TextPart``, ``HTMLPart``, ``ReplyTo``, ``CustomID`` (echoed on every
event), ``Attachments`` (``ContentType``, ``Filename``, ``Base64Content``); ``SandboxMode``
validates without sending. Success answers ``{"Messages": [{"Status": "success", "To":
[{"Email", "MessageUUID", "MessageID", "MessageHref"}]}]}``; the ``MessageID`` is what the
message REST resource and event webhooks use.

Errors (https://dev.mailjet.com/email/reference/send-emails/, "Send API errors"): a global
``{"ErrorCode", "ErrorMessage", "StatusCode"}`` (``mj-0001`` suspended key and ``mj-0015`` bad
credentials with 401, ``mj-0002`` malformed JSON), or per message ``{"Status": "error",
"Errors": [{"ErrorCode", "StatusCode", "ErrorMessage", "ErrorRelatedTo"}]}``: ``mj-0013`` (an
invalid email address) related to ``To[0].Email`` rejects the recipient; ``send-0008`` 403 is a
sender not authorised for the account. The API takes no idempotency key. ``GET /v3/REST/user``
checks the key pair without sending anything.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import SecretStr

from providers import mailjet_callbacks
from providers.base import ChannelType, CheckResult, Credentials, Message
from providers.callbacks import CallbackRequest, ParsedCallback
from providers.email_common import (
    EmailSenderSettings,
    base64_text,
    body_parts,
    recipient_email,
)
from providers.errors import MAX_DETAIL, ProviderError, RecipientError
from providers.http import json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest

DEFAULT_BASE_URL = "https://api.mailjet.com"

#: Error codes about a value's format; they reject the recipient when they concern To/Cc/Bcc.
_ADDRESS_CODES = frozenset({"mj-0013"})
#: ``To``, ``To[0].Email``, ``Cc[1].Email``...
_RECIPIENT_FIELD = re.compile(r"^(To|Cc|Bcc)\b")


class MailjetCredentials(Credentials):
    #: The public API key (basic-auth user) and the secret key (password).
    api_key: SecretStr
    secret_key: SecretStr
    #: The HTTP basic auth pair put in the event webhook's URL; without the password every
    #: delivery callback is refused.
    webhook_username: str | None = None
    webhook_password: SecretStr | None = None


class MailjetSettings(EmailSenderSettings):
    """``from_email`` must be a validated sender address or on a validated domain."""

    #: Validate the request without sending (a test integration).
    sandbox_mode: bool = False
    base_url: str | None = None


class MailjetProvider(HttpProvider[MailjetCredentials, MailjetSettings]):
    name = "mailjet"
    display_name = "Mailjet"
    channel = ChannelType.EMAIL
    credentials_model = MailjetCredentials
    settings_model = MailjetSettings
    returns_message_id = True
    supports_html = True
    # The API bounds the attachments' total size (15 MB), not their number; this is our cap.
    max_attachments = 10
    supports_callbacks = True

    @staticmethod
    def base_url(settings: MailjetSettings) -> str:
        return (settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def build_request(
        self, message: Message, credentials: MailjetCredentials, settings: MailjetSettings
    ) -> HttpRequest:
        to_email = recipient_email(self.name, message)
        return HttpRequest(
            "POST",
            f"{self.base_url(settings)}/v3.1/send",
            auth=_auth(credentials),
            json=build_payload(message, to_email, settings),
        )

    def message_id(self, response: httpx.Response) -> str | None:
        return _message_id(_first_message(json_body(response)))

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        """A 2xx accepts only when the message's own ``Status`` is ``success``."""
        if response.is_success and _first_message(json_body(response)).get("Status") == "success":
            return None
        return self.classify(response)

    def classify(self, response: httpx.Response) -> ProviderError:
        body = json_body(response)
        result = _first_message(body)
        errors = [error for error in result.get("Errors") or [] if isinstance(error, dict)]
        if not errors and body.get("ErrorCode"):
            errors = [body]  # a global error: authentication, malformed JSON
        if not errors:
            return self.coded_error(response, None)
        for error in errors:
            related = [str(field) for field in error.get("ErrorRelatedTo") or []]
            if error.get("ErrorCode") in _ADDRESS_CODES and any(
                _RECIPIENT_FIELD.match(field) for field in related
            ):
                return self.coded_error(response, _error_code(error), RecipientError)
        return self.coded_error(response, _error_code(errors[0]))

    async def check(
        self,
        credentials: MailjetCredentials,
        settings: MailjetSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{self.base_url(settings)}/v3/REST/user",
            auth=_auth(credentials),
        )
        if response.is_success:
            return CheckResult(ok=True, detail="API key pair valid")
        return CheckResult(ok=False, detail=str(self.classify(response)))

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: MailjetCredentials,
        settings: MailjetSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """One event, or a grouped batch (:mod:`providers.mailjet_callbacks`)."""
        return mailjet_callbacks.parse(
            self.name, request, credentials.webhook_username, credentials.webhook_password
        )


def _error_code(error: dict[str, Any]) -> ErrorCode:
    code = str(error.get("ErrorCode") or "")
    return ErrorCode(code or None, f"{code}: {error.get('ErrorMessage') or ''}"[:MAX_DETAIL])


def _auth(credentials: MailjetCredentials) -> httpx.BasicAuth:
    return httpx.BasicAuth(
        credentials.api_key.get_secret_value(), credentials.secret_key.get_secret_value()
    )


def _first_message(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("Messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        return messages[0]
    return {}


def _message_id(result: dict[str, Any]) -> str | None:
    recipients = result.get("To")
    if not isinstance(recipients, list) or not recipients or not isinstance(recipients[0], dict):
        return None
    first = recipients[0]
    message_id = first.get("MessageID") or first.get("MessageUUID")
    return str(message_id) if message_id else None


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"Email": email, "Name": name} if name else {"Email": email}


def build_payload(message: Message, to_email: str, settings: MailjetSettings) -> dict[str, Any]:
    """The documented Send API v3.1 body with one message for one recipient."""
    item: dict[str, Any] = {
        "From": _address(settings.from_email, settings.from_name),
        "To": [_address(to_email, message.to.name)],
        "Subject": message.subject or "",
        "CustomID": message.delivery_id,
    }
    text, html = body_parts(message)
    if text is not None:
        item["TextPart"] = text
    if html is not None:
        item["HTMLPart"] = html
    if settings.reply_to:
        item["ReplyTo"] = {"Email": settings.reply_to}
    if message.attachments:
        item["Attachments"] = [
            {
                "ContentType": attachment.content_type,
                "Filename": attachment.filename,
                "Base64Content": base64_text(attachment.content),
            }
            for attachment in message.attachments
        ]
    payload: dict[str, Any] = {"Messages": [item]}
    if settings.sandbox_mode:
        payload["SandboxMode"] = True
    return payload
