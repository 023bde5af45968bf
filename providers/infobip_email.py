"""Infobip Email: https://www.infobip.com/docs/api/channels/email/send-email

``POST {base_url}/email/3/send`` with ``Authorization: App <API key>`` and a
``multipart/form-data`` body: ``from`` (``Name <address>``), ``to``, ``subject``, ``text``,
``html``, ``replyTo``, ``callbackData`` and ``notifyUrl`` (delivery reports), and one
``attachment`` file part per file. A 200 answers ``{"bulkId", "messages": [{"to", "messageId",
"status"}]}`` like the SMS API: the ``messageId`` is the message's, and a REJECTED status refuses
it. The account's base URL, auth, request errors and status codes are shared with the SMS
provider: :mod:`providers.infobip_common`. The API takes no idempotency key;
``GET /account/1/balance`` checks the key.
"""

from __future__ import annotations

import httpx

from providers.base import ChannelType, CheckResult, Message
from providers.email_common import EmailSenderSettings, body_parts, display_address, recipient_email
from providers.errors import ProviderError
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest, RequestFiles
from providers.infobip_common import (
    InfobipCredentials,
    InfobipSettings,
    auth_headers,
    balance_check,
    message_id,
    request_error,
    status_rejection,
)


class InfobipEmailSettings(EmailSenderSettings, InfobipSettings):
    """``from_email`` must be on a domain verified in the Infobip account."""

    #: Where Infobip posts delivery reports for these messages.
    notify_url: str | None = None


class InfobipEmailProvider(HttpProvider[InfobipCredentials, InfobipEmailSettings]):
    name = "infobip_email"
    display_name = "Infobip Email"
    channel = ChannelType.EMAIL
    credentials_model = InfobipCredentials
    settings_model = InfobipEmailSettings
    returns_message_id = True
    supports_html = True
    # The API bounds the whole message (20 MB), not the number of files; this is our cap.
    max_attachments = 10

    def build_request(
        self, message: Message, credentials: InfobipCredentials, settings: InfobipEmailSettings
    ) -> HttpRequest:
        return HttpRequest(
            "POST",
            f"{settings.base_url}/email/3/send",
            headers=auth_headers(credentials),
            files=build_form(message, recipient_email(self.name, message), settings),
        )

    def message_id(self, response: httpx.Response) -> str | None:
        return message_id(response)

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        if not response.is_success:
            return self.classify(response)
        return status_rejection(self.name, response)

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        return request_error(response)

    async def check(
        self,
        credentials: InfobipCredentials,
        settings: InfobipEmailSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        return await balance_check(self.name, credentials, settings.base_url, client)


def build_form(message: Message, to_email: str, settings: InfobipEmailSettings) -> RequestFiles:
    """The documented multipart form for one recipient: fields, then one part per file."""
    fields = [
        ("from", display_address(settings.from_email, settings.from_name)),
        ("to", to_email),
        ("subject", message.subject or ""),
    ]
    text, html = body_parts(message)
    if text is not None:
        fields.append(("text", text))
    if html is not None:
        fields.append(("html", html))
    if settings.reply_to:
        fields.append(("replyTo", settings.reply_to))
    # Comes back on the delivery report, so it maps back to the delivery.
    fields.append(("callbackData", message.delivery_id))
    if settings.notify_url:
        fields.append(("notifyUrl", settings.notify_url))
    form: list[tuple[str, tuple[str, bytes, str] | tuple[None, bytes]]] = [
        (name, (None, value.encode())) for name, value in fields
    ]
    form += [
        ("attachment", (attachment.filename, attachment.content, attachment.content_type))
        for attachment in message.attachments
    ]
    return form
