"""Infobip SMS: https://www.infobip.com/docs/api/channels/sms/sms-messaging/outbound-sms/send-sms-message

``POST {base_url}/sms/2/text/advanced`` with ``Authorization: App <API key>`` and
``{"messages": [{"destinations": [{"to"}], "from", "text", "callbackData", "notifyUrl"}]}``;
``to`` is the international number without ``+``. A 200 answers ``{"bulkId", "messages":
[{"messageId", "status", "to"}]}``: the ``messageId`` is the message's, and a status in the
REJECTED group refuses it. The account's base URL, auth, request errors and status codes are
Infobip's and shared with the email provider: :mod:`providers.infobip_common`. The API takes no
idempotency key; ``GET /account/1/balance`` checks the key.
"""

from __future__ import annotations

import httpx

from providers.base import ChannelType, CheckResult, LongBody, Message
from providers.errors import ProviderError
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.infobip_common import (
    InfobipCredentials,
    InfobipSettings,
    auth_headers,
    balance_check,
    message_id,
    request_error,
    status_rejection,
)
from providers.sms_common import message_text, msisdn, recipient_number


class InfobipSmsSettings(InfobipSettings):
    #: The sender: an alphanumeric sender id or a number registered with Infobip.
    sender: str | None = None
    #: Where Infobip posts delivery reports for these messages.
    notify_url: str | None = None


class InfobipSmsProvider(HttpProvider[InfobipCredentials, InfobipSmsSettings]):
    name = "infobip_sms"
    display_name = "Infobip SMS"
    channel = ChannelType.SMS
    credentials_model = InfobipCredentials
    settings_model = InfobipSmsSettings
    returns_message_id = True
    #: A long text travels as a concatenated SMS: Infobip splits it.
    long_body = LongBody.SPLIT

    def build_request(
        self, message: Message, credentials: InfobipCredentials, settings: InfobipSmsSettings
    ) -> HttpRequest:
        entry: dict[str, object] = {
            "destinations": [{"to": msisdn(recipient_number(self.name, message))}],
            "text": message_text(self.name, message),
            # Comes back on the delivery report, so it maps back to the delivery.
            "callbackData": message.delivery_id,
        }
        if settings.sender:
            entry["from"] = settings.sender
        if settings.notify_url:
            entry["notifyUrl"] = settings.notify_url
        return HttpRequest(
            "POST",
            f"{settings.base_url}/sms/2/text/advanced",
            headers=auth_headers(credentials),
            json={"messages": [entry]},
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
        settings: InfobipSmsSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        return await balance_check(self.name, credentials, settings.base_url, client)
