"""Brevo transactional email: https://developers.brevo.com/reference/sendtransacemail

``POST https://api.brevo.com/v3/smtp/email`` with the ``api-key`` header and a JSON body:
``sender`` and ``to`` (``{"email", "name"}``), ``subject``, ``htmlContent`` (required when no
template is used, so a text-only message gets an escaped HTML rendering of its text),
``textContent``, ``replyTo``, ``attachment`` (base64 ``content`` with its ``name``) and
``headers``, where ``idempotencyKey`` (a UUID, the API's own spelling: not ``Idempotency-Key``)
de-duplicates retried sends and ``X-Mailin-custom`` comes back on every webhook event. Success is
``201 {"messageId": "<...>"}``.

Errors are ``{"code", "message"}`` (https://developers.brevo.com/docs/how-it-works): 400
``invalid_parameter``/``missing_parameter`` ("email is not valid in to" rejects the recipient),
401 ``unauthorized`` (bad key), 402 ``not_enough_credits``, 403 ``permission_denied`` (an IP
not on the authorised list), 429 with ``x-sib-ratelimit-reset`` (seconds until the window
resets). ``GET /v3/account`` checks the key without sending anything.
"""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

import httpx
from pydantic import SecretStr

from providers import brevo_callbacks
from providers.base import ChannelType, CheckResult, Credentials, Message
from providers.callbacks import CallbackRequest, ParsedCallback
from providers.email_common import (
    EmailSenderSettings,
    base64_text,
    body_parts,
    recipient_email,
)
from providers.errors import MAX_DETAIL, RecipientError
from providers.http import ErrorClass, json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.retry_after import parse_retry_after

DEFAULT_BASE_URL = "https://api.brevo.com"

#: "email is not valid in to", "Invalid email address passed in cc"...
_RECIPIENT_FIELD = re.compile(r"\bin (to|cc|bcc)\b", re.IGNORECASE)
_RECIPIENT_CODES = frozenset({"invalid_parameter", "missing_parameter"})

#: Namespace of the v5 UUIDs sent as ``idempotencyKey`` for a delivery id that is not a UUID.
IDEMPOTENCY_NAMESPACE = uuid.UUID("3b8f2c6e-9d41-4a57-b0e2-7c5a1f9e4d38")


class BrevoCredentials(Credentials):
    api_key: SecretStr
    #: The webhook's HTTP basic auth pair or bearer token (Brevo signs nothing); without one
    #: of them every delivery callback is refused.
    webhook_username: str | None = None
    webhook_password: SecretStr | None = None
    webhook_token: SecretStr | None = None


class BrevoSettings(EmailSenderSettings):
    #: ``from_email`` must be a sender (or on a domain) validated in Brevo.
    base_url: str | None = None


class BrevoProvider(HttpProvider[BrevoCredentials, BrevoSettings]):
    name = "brevo"
    display_name = "Brevo"
    channel = ChannelType.EMAIL
    credentials_model = BrevoCredentials
    settings_model = BrevoSettings
    returns_message_id = True
    message_id_key = "messageId"
    supports_html = True
    supports_idempotency_key = True
    # The API bounds the whole message (20 MB), not the number of files; this is our cap.
    max_attachments = 10
    supports_callbacks = True

    @staticmethod
    def base_url(settings: BrevoSettings) -> str:
        return (settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def build_request(
        self, message: Message, credentials: BrevoCredentials, settings: BrevoSettings
    ) -> HttpRequest:
        to_email = recipient_email(self.name, message)
        return HttpRequest(
            "POST",
            f"{self.base_url(settings)}/v3/smtp/email",
            headers=_headers(credentials),
            json=build_payload(message, to_email, settings),
        )

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        body = json_body(response)
        code = str(body.get("code") or "").lower()
        detail = str(body.get("message") or "")
        if code:
            return ErrorCode(code, f"{code}: {detail}"[:MAX_DETAIL], detail)
        return ErrorCode(None, "HTTP 429: rate limited") if response.status_code == 429 else None

    def error_class(self, code: ErrorCode, response: httpx.Response) -> ErrorClass | None:
        recipient = code.code in _RECIPIENT_CODES and _RECIPIENT_FIELD.search(code.detail)
        if response.status_code == 400 and recipient:
            return RecipientError
        return super().error_class(code, response)

    def retry_after(self, response: httpx.Response) -> float | None:
        # Brevo states the wait of a 429 in its own header; a Retry-After, if any, wins.
        retry_after = super().retry_after(response)
        if retry_after is None and response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("x-sib-ratelimit-reset"))
        return retry_after

    async def check(
        self,
        credentials: BrevoCredentials,
        settings: BrevoSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{self.base_url(settings)}/v3/account",
            headers=_headers(credentials),
        )
        if not response.is_success:
            return CheckResult(ok=False, detail=str(self.classify(response)))
        company = json_body(response).get("companyName")
        return CheckResult(ok=True, detail=f"API key valid (account {company!r})")

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: BrevoCredentials,
        settings: BrevoSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """One transactional webhook event (:mod:`providers.brevo_callbacks`)."""
        return brevo_callbacks.parse(
            self.name,
            request,
            username=credentials.webhook_username,
            password=credentials.webhook_password,
            token=credentials.webhook_token,
        )


def _headers(credentials: BrevoCredentials) -> dict[str, str]:
    return {"accept": "application/json", "api-key": credentials.api_key.get_secret_value()}


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def text_as_html(text: str) -> str:
    """An escaped HTML rendering of a text body, line breaks kept."""
    return "<html><body>" + html.escape(text).replace("\n", "<br>\n") + "</body></html>"


def idempotency_key(delivery_id: str) -> str:
    """The ``idempotencyKey`` of a delivery: its id when that is a UUID (it is for deliveries the
    dispatcher makes), else the v5 UUID named by it; the same for every retry."""
    try:
        return str(uuid.UUID(delivery_id))
    except ValueError:
        return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, delivery_id))


def build_payload(message: Message, to_email: str, settings: BrevoSettings) -> dict[str, Any]:
    """The documented transactional email body for one recipient."""
    text, html_part = body_parts(message)
    payload: dict[str, Any] = {
        "sender": _address(settings.from_email, settings.from_name),
        "to": [_address(to_email, message.to.name)],
        "subject": message.subject or "",
        "htmlContent": html_part if html_part is not None else text_as_html(text or ""),
        "headers": {
            "idempotencyKey": idempotency_key(message.delivery_id),
            "X-Mailin-custom": message.delivery_id,
        },
    }
    if text is not None:
        payload["textContent"] = text
    if settings.reply_to:
        payload["replyTo"] = {"email": settings.reply_to}
    if message.attachments:
        payload["attachment"] = [
            {"content": base64_text(attachment.content), "name": attachment.filename}
            for attachment in message.attachments
        ]
    return payload
