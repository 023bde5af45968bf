"""Vonage (Nexmo) SMS API: https://developer.vonage.com/en/api/sms

``POST https://rest.nexmo.com/sms/json`` with ``api_key``/``api_secret`` in the form body. The API
answers HTTP 200 even when a message is refused: every ``messages[]`` entry has a ``status``
(``"0"`` is accepted) and, on failure, an ``error-text``. The status table is documented at
https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from providers.base import (
    ChannelType,
    CheckResult,
    Credentials,
    Message,
    Provider,
    SendResult,
    Settings,
)
from providers.errors import (
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import classify_status, json_body, send_request

DEFAULT_BASE_URL = "https://rest.nexmo.com"

#: ``messages[].status`` codes of the SMS API and what they mean for us.
STATUS_TABLE: Mapping[str, tuple[type[ProviderError], str]] = {
    "1": (RetryableError, "throttled"),
    "2": (IntegrationError, "missing parameters"),
    "3": (RecipientError, "invalid parameters"),
    "4": (IntegrationError, "invalid credentials"),
    "5": (RetryableError, "internal error"),
    "6": (RecipientError, "invalid message (unroutable number prefix)"),
    "7": (RecipientError, "number barred"),
    "8": (IntegrationError, "partner account barred"),
    "9": (IntegrationError, "partner quota violation (insufficient credit)"),
    "10": (RetryableError, "too many existing binds"),
    "11": (IntegrationError, "account not enabled for HTTP"),
    "12": (RecipientError, "message too long"),
    "14": (IntegrationError, "invalid signature"),
    "15": (IntegrationError, "invalid sender address"),
    "22": (RecipientError, "invalid network code"),
    "23": (IntegrationError, "invalid callback url"),
    "29": (IntegrationError, "non-whitelisted destination (account in demo mode)"),
    "32": (IntegrationError, "signature and api secret disallowed"),
    "33": (RecipientError, "number de-activated"),
}

#: Characters of the GSM 03.38 default alphabet and its extension table; any other character
#: needs ``type=unicode`` or it is garbled on the handset.
GSM_CHARACTERS = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    "\f^{}\\[~]|€"
)


class VonageCredentials(Credentials):
    api_key: str
    api_secret: SecretStr


class VonageSettings(Settings):
    #: Sender: a Vonage virtual number or an alphanumeric sender id.
    sender: str
    #: Delivery receipt webhook, when not set on the account.
    callback: str | None = None
    base_url: str = DEFAULT_BASE_URL


class VonageProvider(Provider[VonageCredentials, VonageSettings]):
    name: ClassVar[str] = "vonage"
    display_name: ClassVar[str] = "Vonage SMS"
    channel: ClassVar[ChannelType] = ChannelType.SMS
    credentials_model: ClassVar[type[Credentials]] = VonageCredentials
    settings_model: ClassVar[type[Settings]] = VonageSettings
    returns_message_id: ClassVar[bool] = True
    #: "The SMS API has a default throughput limit of 30 API requests per second."
    rate_limit_per_second: ClassVar[float | None] = 30.0

    async def send(
        self,
        message: Message,
        credentials: VonageCredentials,
        settings: VonageSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        phone = message.to.phone
        if not phone:
            raise RecipientError(self.name, "recipient has no phone number")
        form = {
            "api_key": credentials.api_key,
            "api_secret": credentials.api_secret.get_secret_value(),
            "from": settings.sender,
            # E.164 without the leading "+", as the API documents it.
            "to": phone.strip().lstrip("+").replace(" ", ""),
            "text": message.body,
            "client-ref": message.delivery_id[:100],
        }
        if not is_gsm(message.body):
            form["type"] = "unicode"
        if settings.callback:
            form["callback"] = settings.callback
        response = await send_request(
            self.name,
            client,
            "POST",
            f"{settings.base_url.rstrip('/')}/sms/json",
            data=form,
        )
        if not response.is_success:
            raise classify_status(self.name, response)
        return self._result(response, json_body(response))

    async def check(
        self,
        credentials: VonageCredentials,
        settings: VonageSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{settings.base_url.rstrip('/')}/account/get-balance",
            auth=(credentials.api_key, credentials.api_secret.get_secret_value()),
        )
        if response.is_success:
            value = json_body(response).get("value")
            return CheckResult(ok=True, detail=f"balance: {value}")
        return CheckResult(ok=False, detail=str(classify_status(self.name, response)))

    def _result(self, response: httpx.Response, body: dict[str, Any]) -> SendResult:
        parts = body.get("messages")
        if not isinstance(parts, list) or not parts:
            raise RetryableError(
                self.name, "answer without messages", status_code=response.status_code
            )
        for part in parts:
            status = str(part.get("status", "")) if isinstance(part, dict) else ""
            if status != "0":
                raise self._status_error(response.status_code, status, part)
        # A long text is split into several parts; the first part's id names the send.
        first = parts[0]
        message_id = first.get("message-id") if isinstance(first, dict) else None
        return SendResult(
            provider_message_id=str(message_id) if message_id else None,
            status_code=response.status_code,
        )

    def _status_error(self, http_status: int, status: str, part: Any) -> ProviderError:
        error_text = str(part.get("error-text", "")) if isinstance(part, dict) else ""
        error_class, meaning = STATUS_TABLE.get(status, (IntegrationError, "unknown status"))
        if status == "3" and _names_sender(error_text):
            # "Invalid parameters" covers the sender as well as the recipient.
            error_class = IntegrationError
        text = f"status {status}: {meaning} ({error_text[:200]})"
        return error_class(self.name, text, status_code=http_status, provider_code=status)


def is_gsm(text: str) -> bool:
    """True when ``text`` fits the GSM 7-bit alphabet (no ``type=unicode`` needed)."""
    return all(character in GSM_CHARACTERS for character in text)


def _names_sender(error_text: str) -> bool:
    lowered = error_text.lower()
    return "from" in lowered or "sender" in lowered or "api_key" in lowered
