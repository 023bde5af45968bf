"""Mailchimp Transactional (Mandrill) messages/send:
https://mailchimp.com/developer/transactional/api/messages/send-new-message/

``POST https://mandrillapp.com/api/1.0/messages/send`` with the API key in the JSON body
(``{"key", "message"}``: there is no auth header). ``message`` holds ``from_email``,
``from_name``, ``to`` (``[{"email", "name", "type": "to"}]``), ``subject``, ``text``, ``html``,
``headers`` (``Reply-To``), ``metadata`` (echoed on every webhook event), ``subaccount`` and
``attachments`` (``{"type", "name", "content"}``, base64 content).

A 200 answers one entry per recipient: ``[{"email", "status", "reject_reason", "_id"}]``. The
``status`` is ``sent``, ``queued`` or ``scheduled`` (accepted), ``rejected`` (with a
``reject_reason``) or ``invalid`` (a malformed address); the ``_id`` is the message id webhooks
and ``messages/info`` use. A rejection names why: ``hard-bounce``, ``soft-bounce``, ``spam``,
``unsub``, ``custom`` and ``rule`` are the address's own record on the account's rejection
denylist (the recipient cannot be reached through this account), while ``invalid-sender``,
``unsigned`` (a sending domain without DKIM/SPF) and ``test-mode-limit`` are faults of the
integration. Refused calls are ``{"status": "error", "code", "name", "message"}`` answered with
an error status (HTTP 500 for all of them on the API as built): ``Invalid_Key``,
``PaymentRequired`` and ``Unknown_Subaccount`` are the integration's, ``ValidationError`` a
request the integration built wrong, ``GeneralError`` a fault of the service. The API takes no
idempotency key. ``POST /users/ping2`` answers ``{"PING": "PONG!"}`` for a valid key.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

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

DEFAULT_BASE_URL = "https://mandrillapp.com/api/1.0"

#: Error ``name``s of a refused call; whatever the HTTP status, they settle the outcome.
ERROR_NAMES: Mapping[str, ErrorClass] = MappingProxyType(
    {
        "Invalid_Key": IntegrationError,
        "PaymentRequired": IntegrationError,
        "Unknown_Subaccount": IntegrationError,
        "ValidationError": IntegrationError,
        "GeneralError": RetryableError,
    }
)

#: Recipient statuses of an accepted message.
ACCEPTED = frozenset({"sent", "queued", "scheduled"})

#: ``reject_reason``s that are faults of the integration, not of the address.
INTEGRATION_REJECTIONS = frozenset({"invalid-sender", "unsigned", "test-mode-limit"})


class MandrillCredentials(Credentials):
    api_key: SecretStr


class MandrillSettings(EmailSenderSettings):
    """``from_email`` must be on a sending domain verified in Mailchimp Transactional."""

    #: The subaccount to send through (its own reputation and quota).
    subaccount: str | None = None
    base_url: str | None = None


class MandrillProvider(HttpProvider[MandrillCredentials, MandrillSettings]):
    name = "mandrill"
    display_name = "Mailchimp Transactional (Mandrill)"
    channel = ChannelType.EMAIL
    credentials_model = MandrillCredentials
    settings_model = MandrillSettings
    returns_message_id = True
    supports_html = True
    # The API bounds the whole message (25 MB), not the number of files; this is our cap.
    max_attachments = 10
    error_codes = ERROR_NAMES

    @staticmethod
    def base_url(settings: MandrillSettings) -> str:
        return (settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def build_request(
        self, message: Message, credentials: MandrillCredentials, settings: MandrillSettings
    ) -> HttpRequest:
        to_email = recipient_email(self.name, message)
        return HttpRequest(
            "POST",
            f"{self.base_url(settings)}/messages/send",
            json={
                "key": credentials.api_key.get_secret_value(),
                "message": build_message(message, to_email, settings),
            },
        )

    def message_id(self, response: httpx.Response) -> str | None:
        entry = _first_recipient(response)
        value = entry.get("_id") if entry else None
        return str(value) if value else None

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        """A 200 says per recipient whether the message was taken: ``status`` decides."""
        if not response.is_success:
            return self.classify(response)
        entry = _first_recipient(response)
        if entry is None:
            return RetryableError(
                self.name,
                "the answer lists no recipient status",
                status_code=response.status_code,
            )
        status = str(entry.get("status") or "")
        if status in ACCEPTED:
            return None
        reason = str(entry.get("reject_reason") or "")
        text = f"recipient {status}" + (f": {reason}" if reason else "")
        code = reason or status or None
        if status == "rejected" and reason in INTEGRATION_REJECTIONS:
            return IntegrationError(
                self.name, text, status_code=response.status_code, provider_code=code
            )
        # "invalid", and "rejected" for the address's own bounce, complaint or unsubscribe.
        return RecipientError(self.name, text, status_code=response.status_code, provider_code=code)

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        body = json_body(response)
        name = str(body.get("name") or "")
        if body.get("status") != "error" or not name:
            return None
        detail = one_line(body.get("message") or "")
        return ErrorCode(
            name, f"HTTP {response.status_code}: {name}: {detail}"[:MAX_DETAIL], detail
        )

    async def check(
        self,
        credentials: MandrillCredentials,
        settings: MandrillSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "POST",
            f"{self.base_url(settings)}/users/ping2",
            json={"key": credentials.api_key.get_secret_value()},
        )
        if response.is_success and json_body(response).get("PING") == "PONG!":
            return CheckResult(ok=True, detail="API key valid")
        return CheckResult(ok=False, detail=str(self.classify(response)))


def _first_recipient(response: httpx.Response) -> dict[str, Any] | None:
    try:
        entries = response.json()
    except ValueError:
        return None
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        return entries[0]
    return None


def build_message(message: Message, to_email: str, settings: MandrillSettings) -> dict[str, Any]:
    """The documented ``message`` object for one recipient."""
    recipient: dict[str, str] = {"email": to_email, "type": "to"}
    if message.to.name:
        recipient["name"] = message.to.name
    body: dict[str, Any] = {
        "from_email": settings.from_email,
        "to": [recipient],
        "subject": message.subject or "",
        # Echoed on every webhook event, so events map back to the delivery.
        "metadata": {"delivery_id": message.delivery_id},
    }
    if settings.from_name:
        body["from_name"] = settings.from_name
    text, html = body_parts(message)
    if text is not None:
        body["text"] = text
    if html is not None:
        body["html"] = html
    if settings.reply_to:
        body["headers"] = {"Reply-To": settings.reply_to}
    if settings.subaccount:
        body["subaccount"] = settings.subaccount
    if message.attachments:
        body["attachments"] = [
            {
                "type": attachment.content_type,
                "name": attachment.filename,
                "content": base64_text(attachment.content),
            }
            for attachment in message.attachments
        ]
    return body
