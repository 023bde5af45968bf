"""Mailgun Messages API: https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/messages

``POST {base}/v3/{domain}/messages`` with HTTP basic auth ``api:<api key>`` and a
``multipart/form-data`` body, the one content type the operation declares: form fields (``from``,
``to``, ``subject``, ``text``, ``html``, ``h:Reply-To``, ``v:<var>``) and ``attachment`` files.
The base URL is ``https://api.mailgun.net`` for US domains and ``https://api.eu.mailgun.net`` for
EU ones. Success is ``{"id": "<...>", "message": "Queued. Thank you."}``; a 400 carries
``{"message": "..."}``, e.g. ``to parameter is not a valid address``.
"""

from __future__ import annotations

import email.utils
from types import MappingProxyType
from typing import Literal

import httpx
from pydantic import SecretStr

from providers import mailgun_callbacks
from providers.base import ChannelType, CheckResult, Credentials, Message
from providers.callbacks import CallbackRequest, ParsedCallback
from providers.email_common import EmailSenderSettings, body_parts, recipient_email
from providers.errors import MAX_DETAIL, RecipientError
from providers.http import classify_status, json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest, RequestFiles

BASE_URLS: dict[str, str] = {
    "us": "https://api.mailgun.net",
    "eu": "https://api.eu.mailgun.net",
}

#: Parameters naming the recipient in Mailgun's 400 messages.
_RECIPIENT_PARAMETERS = ("to", "cc", "bcc")


class MailgunCredentials(Credentials):
    #: A primary account key or a domain sending key.
    api_key: SecretStr
    #: The account's HTTP webhook signing key, which signs event webhooks; without it every
    #: delivery callback is refused.
    webhook_signing_key: SecretStr | None = None


class MailgunSettings(EmailSenderSettings):
    domain: str
    #: The region the domain was created in; it fixes the API host.
    region: Literal["us", "eu"] = "us"
    base_url: str | None = None


class MailgunProvider(HttpProvider[MailgunCredentials, MailgunSettings]):
    name = "mailgun"
    display_name = "Mailgun"
    channel = ChannelType.EMAIL
    credentials_model = MailgunCredentials
    settings_model = MailgunSettings
    returns_message_id = True
    message_id_key = "id"
    supports_html = True
    # The API bounds the whole message (25 MB), not the number of files; this is our cap.
    max_attachments = 10
    error_codes = MappingProxyType({"invalid_recipient": RecipientError})
    supports_callbacks = True

    @staticmethod
    def base_url(settings: MailgunSettings) -> str:
        return (settings.base_url or BASE_URLS[settings.region]).rstrip("/")

    def build_request(
        self, message: Message, credentials: MailgunCredentials, settings: MailgunSettings
    ) -> HttpRequest:
        to_email = recipient_email(self.name, message)
        return HttpRequest(
            "POST",
            f"{self.base_url(settings)}/v3/{settings.domain}/messages",
            auth=_auth(credentials),
            files=build_form(message, to_email, settings),
        )

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        """A 400 whose message names a recipient parameter; other errors go by status."""
        detail = str(json_body(response).get("message") or "")
        if response.status_code == 400 and _names_recipient(detail):
            return ErrorCode("invalid_recipient", detail[:MAX_DETAIL])
        return None

    async def check(
        self,
        credentials: MailgunCredentials,
        settings: MailgunSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        # Reading the domain needs a primary account key: a domain sending key only may send.
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{self.base_url(settings)}/v4/domains/{settings.domain}",
            auth=_auth(credentials),
        )
        if response.is_success:
            domain = json_body(response).get("domain") or {}
            state = domain.get("state") if isinstance(domain, dict) else None
            return CheckResult(ok=True, detail=f"domain {settings.domain} state: {state}")
        return CheckResult(ok=False, detail=str(classify_status(self.name, response)))

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: MailgunCredentials,
        settings: MailgunSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """One event webhook (:mod:`providers.mailgun_callbacks`)."""
        return mailgun_callbacks.parse(self.name, request, credentials.webhook_signing_key)


def build_form(message: Message, to_email: str, settings: MailgunSettings) -> RequestFiles:
    """The documented form for one recipient, as multipart parts."""
    data: dict[str, str] = {
        "from": email.utils.formataddr((settings.from_name or "", settings.from_email)),
        "to": email.utils.formataddr((message.to.name or "", to_email)),
        "subject": message.subject or "",
        # User variables come back on every event webhook.
        "v:delivery_id": message.delivery_id,
    }
    text, html = body_parts(message)
    if text is not None:
        data["text"] = text
    if html is not None:
        data["html"] = html
    if settings.reply_to:
        data["h:Reply-To"] = settings.reply_to
    # httpx encodes a form as multipart only when it has files, so the fields go as parts
    # without a filename (plain form fields): the body is multipart with or without files.
    parts: list[tuple[str, tuple[str, bytes, str] | tuple[None, bytes]]] = [
        (name, (None, value.encode())) for name, value in data.items()
    ]
    parts += [("attachment", (a.filename, a.content, a.content_type)) for a in message.attachments]
    return parts


def _auth(credentials: MailgunCredentials) -> httpx.BasicAuth:
    return httpx.BasicAuth("api", credentials.api_key.get_secret_value())


def _names_recipient(detail: str) -> bool:
    """``to parameter is not a valid address``, ``'to' parameter is missing``..."""
    text = detail.lower().lstrip()
    return any(
        text.startswith((f"{name} parameter", f"'{name}' parameter"))
        for name in _RECIPIENT_PARAMETERS
    )
