"""Sinch SMS REST API, Batches: https://developers.sinch.com/docs/sms/api-reference/sms/tag/Batches/#tag/Batches/operation/SendSMS

``POST https://{region}.sms.api.sinch.com/xms/v1/{service_plan_id}/batches`` with
``Authorization: Bearer <API token>`` and ``{"from", "to": ["<MSISDN>"], "body",
"client_reference", "delivery_report", "callback_url"}``. The region (``us``, ``eu``, ``au``,
``br``, ``ca``) is the one the service plan was created in; it fixes the host. A 201 answers the
batch (``{"id", "to", "from", "body", "type": "mt_text", ...}``): its ``id`` is the message id
delivery reports carry as ``batch_id``.

Refusals (https://developers.sinch.com/docs/sms/api-reference/status-codes/) answer 400 or 403
with ``{"code", "text"}``: 400 ``syntax_invalid_json``, ``syntax_invalid_parameter_format``
(a field's format; the recipient's when the text names it) and ``syntax_constraint_violation``;
403 ``blocked_account``, ``missing_callback_url``, ``unknown_group``/``unknown_campaign`` (the
integration's) and ``illegal_number_type``/``no_valid_recipient`` (the recipient's). 401 is a
bad token, 429 the plan's rate limit. The API takes no idempotency key. ``GET .../batches`` with
``page_size=1`` lists the plan's batches and checks plan and token without sending.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from providers.base import ChannelType, CheckResult, Credentials, LongBody, Message, Settings
from providers.errors import MAX_DETAIL, IntegrationError, RecipientError
from providers.http import ErrorClass, json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.sms_common import message_text, msisdn, one_line, recipient_number

HOST = "https://{region}.sms.api.sinch.com"

#: Sinch's refusal codes that settle the outcome; others go by HTTP status.
ERROR_CODES: Mapping[str, ErrorClass] = MappingProxyType(
    {
        "syntax_invalid_json": IntegrationError,
        "syntax_constraint_violation": IntegrationError,
        "blocked_account": IntegrationError,
        "missing_callback_url": IntegrationError,
        "unknown_group": IntegrationError,
        "unknown_campaign": IntegrationError,
        "illegal_number_type": RecipientError,
        "no_valid_recipient": RecipientError,
    }
)

#: A format error about the recipient: "Invalid MSISDN ... in field 'to'".
_RECIPIENT_FORMAT = re.compile(r"\bto\b|msisdn|recipient", re.IGNORECASE)


class SinchCredentials(Credentials):
    #: The service plan's id (part of every request path) and its API token.
    service_plan_id: str = Field(pattern=r"^[A-Za-z0-9]+$")
    api_token: SecretStr


class SinchSettings(Settings):
    #: The sender: a number or short code of the plan, or an alphanumeric sender id.
    sender: str | None = None
    #: Where the service plan lives.
    region: Literal["us", "eu", "au", "br", "ca"] = "us"
    #: Where Sinch posts delivery reports; none are asked for without it.
    callback_url: str | None = None


class SinchProvider(HttpProvider[SinchCredentials, SinchSettings]):
    name = "sinch"
    display_name = "Sinch SMS"
    channel = ChannelType.SMS
    credentials_model = SinchCredentials
    settings_model = SinchSettings
    returns_message_id = True
    message_id_key = "id"
    #: "body ... max 2000 characters": Sinch sends a long one as a concatenated SMS.
    max_body_length = 2000
    long_body = LongBody.SPLIT
    error_codes = ERROR_CODES

    def build_request(
        self, message: Message, credentials: SinchCredentials, settings: SinchSettings
    ) -> HttpRequest:
        body: dict[str, Any] = {
            "to": [msisdn(recipient_number(self.name, message))],
            "body": message_text(self.name, message),
            # Echoed on every delivery report, so reports map back to the delivery.
            "client_reference": message.delivery_id,
        }
        if settings.sender:
            body["from"] = settings.sender
        if settings.callback_url:
            body["delivery_report"] = "per_recipient"
            body["callback_url"] = settings.callback_url
        return HttpRequest(
            "POST",
            f"{_plan_url(credentials, settings)}/batches",
            headers=_auth_headers(credentials),
            json=body,
        )

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        body = json_body(response)
        code = body.get("code")
        if not isinstance(code, str) or not code:
            return None
        detail = one_line(body.get("text") or "")
        return ErrorCode(
            code, f"HTTP {response.status_code}: {code}: {detail}"[:MAX_DETAIL], detail
        )

    def error_class(self, code: ErrorCode, response: httpx.Response) -> ErrorClass | None:
        if code.code == "syntax_invalid_parameter_format":
            return RecipientError if _RECIPIENT_FORMAT.search(code.detail) else IntegrationError
        return super().error_class(code, response)

    async def check(
        self,
        credentials: SinchCredentials,
        settings: SinchSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            f"{_plan_url(credentials, settings)}/batches",
            headers=_auth_headers(credentials),
            params={"page_size": "1"},
        )
        if not response.is_success:
            return CheckResult(ok=False, detail=str(self.classify(response)))
        return CheckResult(ok=True, detail="service plan and API token valid")


def _auth_headers(credentials: SinchCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.api_token.get_secret_value()}"}


def _plan_url(credentials: SinchCredentials, settings: SinchSettings) -> str:
    return f"{HOST.format(region=settings.region)}/xms/v1/{credentials.service_plan_id}"
