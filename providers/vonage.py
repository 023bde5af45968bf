"""Vonage (Nexmo) SMS API: https://developer.vonage.com/en/api/sms

``POST https://rest.nexmo.com/sms/json`` with ``api_key`` and ``api_secret`` in the form body,
``from``, ``to`` (E.164 without the leading ``+``), ``text``, optional ``type=unicode``,
``client-ref`` (echoed on delivery receipts) and ``callback``. The API answers HTTP 200 even
when a message is refused: every ``messages[]`` entry (one per part of a long text) has a
``status`` (``"0"`` is accepted, with a ``message-id``) and, on failure, an ``error-text``. The
status table is documented at
https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms and
https://developer.vonage.com/en/api-errors/sms. The API takes no idempotency key.
``GET https://rest.nexmo.com/account/get-balance`` with basic auth checks the credentials
(https://developer.vonage.com/en/account/code-snippets/account-balance). Delivery receipts,
signed with the account's signature secret, are verified and read by
:mod:`providers.vonage_callbacks`.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import SecretStr

from providers.base import ChannelType, CheckResult, Credentials, Message, Settings
from providers.callbacks import CallbackRequest, ParsedCallback
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.http import json_body, send_request
from providers.http_provider import HttpProvider, HttpRequest
from providers.sms_common import (
    CodeTable,
    code_error,
    is_gsm,
    message_text,
    msisdn,
    one_line,
    recipient_number,
)
from providers.vonage_callbacks import SignatureMethod, parse_receipt

DEFAULT_BASE_URL = "https://rest.nexmo.com"

#: ``messages[].status`` codes of the SMS API and what they mean for us.
STATUS_TABLE: CodeTable = {
    "1": (RetryableError, "throttled"),
    "2": (IntegrationError, "missing parameters"),
    # Narrowed to a recipient error when the error text names the "to" parameter.
    "3": (IntegrationError, "invalid parameters"),
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
    # We never send a network-code, so the account's routing is at fault, not the number.
    "22": (IntegrationError, "invalid network code"),
    "23": (IntegrationError, "invalid callback url"),
    "29": (IntegrationError, "non-whitelisted destination (account in demo mode)"),
    "32": (IntegrationError, "signature and api secret disallowed"),
    "33": (RecipientError, "number de-activated"),
}

#: Status 3 whose error text blames the destination: "Invalid to address", "... parameter to".
_NAMES_TO = re.compile(r"\bto\s+(address|param|number)|\bparam(eter)?\s*[`'\"]?to\b", re.I)


class VonageCredentials(Credentials):
    api_key: str
    api_secret: SecretStr
    #: The account's signature secret (dashboard, API settings), with which Vonage signs
    #: delivery receipts once signed webhooks are enabled: without it every receipt is refused.
    signature_secret: SecretStr | None = None


class VonageSettings(Settings):
    #: Sender: a Vonage virtual number or an alphanumeric sender id.
    sender: str
    #: Delivery receipt webhook, when not set on the account.
    callback: str | None = None
    #: The account's signature method (dashboard, API settings): ``md5hash`` ("MD5 hash", the
    #: default), or the ``md5``, ``sha1``, ``sha256``, ``sha512`` HMACs.
    signature_method: SignatureMethod = "md5hash"
    base_url: str = DEFAULT_BASE_URL


class VonageProvider(HttpProvider[VonageCredentials, VonageSettings]):
    name = "vonage"
    display_name = "Vonage SMS"
    channel = ChannelType.SMS
    credentials_model = VonageCredentials
    settings_model = VonageSettings
    returns_message_id = True
    #: "The SMS API has a default throughput limit of 30 API requests per second."
    rate_limit_per_second = 30.0
    supports_callbacks = True

    def build_request(
        self, message: Message, credentials: VonageCredentials, settings: VonageSettings
    ) -> HttpRequest:
        to = recipient_number(self.name, message)
        return HttpRequest(
            "POST",
            f"{settings.base_url.rstrip('/')}/sms/json",
            data=build_form(message, to, credentials, settings),
        )

    def message_id(self, response: httpx.Response) -> str | None:
        # A long text is split into several parts; the first part's id names the send.
        first = next(iter(_parts(response)), None)
        message_id = first.get("message-id") if isinstance(first, dict) else None
        return str(message_id) if message_id else None

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        """A 200 lists every part's ``status``: any part not ``"0"`` refuses the message."""
        if not response.is_success:
            return self.classify(response)
        parts = _parts(response)
        if not parts:
            return RetryableError(
                self.name, "answer without messages", status_code=response.status_code
            )
        for part in parts:
            fields = part if isinstance(part, dict) else {}
            status = str(fields.get("status", ""))
            if status != "0":
                return self._status_error(response, status, str(fields.get("error-text") or ""))
        return None

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
            return CheckResult(ok=True, detail=f"credentials valid; balance: {value} EUR")
        return CheckResult(ok=False, detail=str(self.classify(response)))

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: VonageCredentials,
        settings: VonageSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """A delivery receipt, signed with the signature secret (see providers.vonage_callbacks)."""
        secret = credentials.signature_secret
        return parse_receipt(
            request,
            api_key=credentials.api_key,
            signature_secret=secret.get_secret_value() if secret else None,
            method=settings.signature_method,
        )

    def _status_error(
        self, response: httpx.Response, status: str, error_text: str
    ) -> ProviderError:
        table = STATUS_TABLE
        if status == "3" and _NAMES_TO.search(error_text):
            table = {"3": (RecipientError, "invalid 'to' number")}
        known = code_error(self.name, table, status, error_text, response)
        if known is not None:
            return known
        return IntegrationError(
            self.name,
            f"unknown status ({status}: {one_line(error_text)})",
            status_code=response.status_code,
            provider_code=status or None,
        )


def _parts(response: httpx.Response) -> list[Any]:
    """``messages`` of an answer: one entry per part of the text."""
    parts = json_body(response).get("messages")
    return parts if isinstance(parts, list) else []


def build_form(
    message: Message, to: str, credentials: VonageCredentials, settings: VonageSettings
) -> dict[str, str]:
    """The documented ``/sms/json`` form for one recipient."""
    text = message_text(VonageProvider.name, message)
    form = {
        "api_key": credentials.api_key,
        "api_secret": credentials.api_secret.get_secret_value(),
        "from": settings.sender,
        "to": msisdn(to),
        "text": text,
        # Up to 100 characters, echoed on delivery receipts.
        "client-ref": message.delivery_id[:100],
    }
    if not is_gsm(text):
        form["type"] = "unicode"
    if settings.callback:
        form["callback"] = settings.callback
    return form
