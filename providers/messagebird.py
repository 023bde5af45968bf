"""MessageBird SMS Messaging API: https://developers.messagebird.com/api/sms-messaging/#send-outbound-sms

``POST https://rest.messagebird.com/messages`` with ``Authorization: AccessKey <key>`` and a JSON
body: ``originator`` (a number with country code, or up to 11 alphanumeric characters),
``recipients`` (MSISDNs: country code and number, no ``+``), ``body``, ``datacoding`` (``plain``
by default, which garbles non-GSM text, so ``unicode`` is sent when needed), optional
``reference`` (echoed on status reports) and ``reportUrl``. A 201 answer is the message object;
its ``id`` is the message id. Errors are ``{"errors": [{"code", "description", "parameter"}]}``
(https://developers.messagebird.com/api/#api-errors): 2 request not allowed (incorrect
access key, HTTP 401), 9 missing params, 10 invalid params, 20 not found, 21 bad request,
25 not enough balance, 98 API not found, 99 internal error. The API takes no idempotency key.
``GET /balance`` reads the balance without sending anything. Status reports, signed with the
account's ``signing_key`` (a JWT), are verified and read by :mod:`providers.messagebird_callbacks`.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from providers.base import ChannelType, CheckResult, Credentials, Message, Settings
from providers.callbacks import CallbackRequest, ParsedCallback
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.http import json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.messagebird_callbacks import parse_status_report
from providers.sms_common import (
    CodeTable,
    code_error,
    is_gsm,
    message_text,
    msisdn,
    one_line,
    recipient_number,
)

DEFAULT_BASE_URL = "https://rest.messagebird.com"

#: Error codes that decide the class whatever the HTTP status says.
ERROR_CODES: CodeTable = {
    "2": (IntegrationError, "request not allowed (incorrect access key)"),
    "25": (IntegrationError, "not enough balance"),
    "99": (RetryableError, "internal error"),
}

#: Codes that name a parameter; a recipient error when every one of them names ``recipients``.
RECIPIENT_CODES: CodeTable = {
    "9": (RecipientError, "no correct recipients"),
    "10": (RecipientError, "invalid recipients"),
}


class MessageBirdCredentials(Credentials):
    access_key: SecretStr
    #: The signing key (dashboard, Developers > API settings; not the access key) with which
    #: MessageBird signs status reports: without it every report is refused.
    signing_key: SecretStr | None = None


class MessageBirdSettings(Settings):
    #: Sender: a phone number (with country code) or an alphanumeric string of up to 11 characters.
    originator: str
    #: Status report webhook, when not set on the account.
    report_url: str | None = None
    base_url: str = DEFAULT_BASE_URL


class MessageBirdProvider(HttpProvider[MessageBirdCredentials, MessageBirdSettings]):
    name = "messagebird"
    display_name = "MessageBird SMS"
    channel = ChannelType.SMS
    credentials_model = MessageBirdCredentials
    settings_model = MessageBirdSettings
    returns_message_id = True
    message_id_key = "id"
    supports_callbacks = True

    def build_request(
        self, message: Message, credentials: MessageBirdCredentials, settings: MessageBirdSettings
    ) -> HttpRequest:
        return HttpRequest(
            "POST",
            f"{settings.base_url.rstrip('/')}/messages",
            headers=_auth(credentials),
            json=build_payload(message, recipient_number(self.name, message), settings),
        )

    async def check(
        self,
        credentials: MessageBirdCredentials,
        settings: MessageBirdSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{settings.base_url.rstrip('/')}/balance",
            headers=_auth(credentials),
        )
        if not response.is_success:
            return CheckResult(ok=False, detail=str(self.classify(response)))
        body = json_body(response)
        balance = f"{body.get('amount')} {body.get('type') or ''}".strip()
        return CheckResult(ok=True, detail=f"access key valid; balance: {balance}")

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: MessageBirdCredentials,
        settings: MessageBirdSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """A status report, signed with the signing key (see providers.messagebird_callbacks)."""
        key = credentials.signing_key
        return parse_status_report(request, key.get_secret_value() if key else None)

    def classify(self, response: httpx.Response) -> ProviderError:
        errors = json_body(response).get("errors")
        entries = (
            [entry for entry in errors if isinstance(entry, dict)]
            if isinstance(errors, list)
            else []
        )
        if not entries:
            return self.coded_error(response, None)
        summary = one_line(
            "; ".join(
                f"{entry.get('code')} {entry.get('description') or ''} ({entry.get('parameter')})"
                for entry in entries
            ),
            limit=300,
        )
        for entry in entries:
            known = code_error(self.name, ERROR_CODES, str(entry.get("code")), summary, response)
            if known is not None:
                return known
        first_code = str(entries[0].get("code"))
        if response.status_code < 500 and all(
            str(entry.get("code")) in RECIPIENT_CODES and entry.get("parameter") == "recipients"
            for entry in entries
        ):
            known = code_error(self.name, RECIPIENT_CODES, first_code, summary, response)
            if known is not None:
                return known
        text = f"HTTP {response.status_code}: {summary}"
        return self.coded_error(response, ErrorCode(first_code, text))


def build_payload(message: Message, to: str, settings: MessageBirdSettings) -> dict[str, Any]:
    """The documented Send outbound SMS body for one recipient."""
    text = message_text(MessageBirdProvider.name, message)
    payload: dict[str, Any] = {
        "originator": settings.originator,
        "recipients": [msisdn(to)],
        "body": text,
        "datacoding": "plain" if is_gsm(text) else "unicode",
        # Echoed back on status reports, so they can be matched to the delivery.
        "reference": message.delivery_id,
    }
    if settings.report_url:
        payload["reportUrl"] = settings.report_url
    return payload


def _auth(credentials: MessageBirdCredentials) -> dict[str, str]:
    return {"Authorization": f"AccessKey {credentials.access_key.get_secret_value()}"}
