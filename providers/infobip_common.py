"""What Infobip's SMS and email providers share: the API key, the account's base URL, and how an
answer is classified (https://www.infobip.com/docs/essentials/api-essentials/).

* **Auth**: ``Authorization: App <API key>``.
* **Base URL**: every Infobip account has its own API host, ``https://<id>.api.infobip.com``,
  shown in the web interface. It is the integration's ``base_url`` setting, which the
  dispatcher's destination guard checks like any tenant-supplied URL before a request is made.
* **Refusals** of the whole request are ``{"requestError": {"serviceException": {"messageId",
  "text"}}}``: ``UNAUTHORIZED`` (401), ``FORBIDDEN`` (403), ``BAD_REQUEST`` (400),
  ``TOO_MANY_REQUESTS`` (429), ``GENERAL_ERROR`` (500); the HTTP status settles them.
* **Per-message statuses** (https://www.infobip.com/docs/essentials/api-essentials/response-status-and-error-codes):
  a 200 lists one ``{"messageId", "status": {"groupId", "groupName", "id", "name",
  "description"}}`` per destination. ``PENDING`` (and ``DELIVERED``) accept; ``REJECTED`` (group
  5) and ``UNDELIVERABLE`` (2) refuse, and the status ``name`` says whose fault it is:
  :data:`STATUS_ERRORS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import httpx
from pydantic import SecretStr, field_validator

from providers.base import CheckResult, Credentials, Settings
from providers.errors import (
    MAX_DETAIL,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import ErrorClass, classify_status, json_body, send_request
from providers.http_provider import ErrorCode
from providers.sms_common import one_line

#: Status groups of an accepted message.
ACCEPTED_GROUPS = frozenset({"PENDING", "DELIVERED"})

#: The documented REJECTED statuses and whose fault each is; an unlisted one refusing a message
#: is the integration's (it fell back to the next integration rather than fail the message).
STATUS_ERRORS: Mapping[str, ErrorClass] = MappingProxyType(
    {
        "REJECTED_NETWORK": RecipientError,
        "REJECTED_PREFIX_MISSING": RecipientError,
        "REJECTED_DND": RecipientError,
        "REJECTED_DESTINATION_BLOCKLISTED": RecipientError,
        "REJECTED_DESTINATION_NOT_REGISTERED": RecipientError,
        "REJECTED_DESTINATION": RecipientError,
        "MISSING_TO": RecipientError,
        "SIGNALS_BLOCKED": RecipientError,
        "REJECTED_SOURCE": IntegrationError,
        "REJECTED_SENDER": IntegrationError,
        "REJECTED_NOT_ENOUGH_CREDITS": IntegrationError,
        "REJECTED_PREPAID_PACKAGE_EXPIRED": IntegrationError,
        "REJECTED_ROUTE_NOT_AVAILABLE": IntegrationError,
        "REJECTED_MESSAGE_TOO_LONG": IntegrationError,
        "REJECTED_INVALID_UDH": IntegrationError,
        "REJECTED_DUPLICATE_MESSAGE_ID": IntegrationError,
        "REJECTED_FLOODING_FILTER": RetryableError,
        "REJECTED_SYSTEM_ERROR": RetryableError,
    }
)


class InfobipCredentials(Credentials):
    api_key: SecretStr


class InfobipSettings(Settings):
    """The account's own API host: a tenant-chosen destination, so it is ``base_url``."""

    #: ``https://<id>.api.infobip.com``, from the Infobip web interface.
    base_url: str

    @field_validator("base_url")
    @classmethod
    def _is_https_url(cls, value: str) -> str:
        if not value.startswith("https://") or len(value) <= len("https://"):
            raise ValueError(
                "base_url must be the https URL of the account's API host "
                "(https://<id>.api.infobip.com)"
            )
        return value.rstrip("/")


def auth_headers(credentials: InfobipCredentials) -> dict[str, str]:
    return {"Authorization": f"App {credentials.api_key.get_secret_value()}"}


def request_error(response: httpx.Response) -> ErrorCode | None:
    """The ``serviceException`` of a refused request: its ``messageId`` and ``text``."""
    request = json_body(response).get("requestError")
    exception = request.get("serviceException") if isinstance(request, dict) else None
    if not isinstance(exception, dict) or not exception.get("messageId"):
        return None
    code = str(exception["messageId"])
    detail = one_line(exception.get("text") or "")
    return ErrorCode(code, f"HTTP {response.status_code}: {code}: {detail}"[:MAX_DETAIL], detail)


def first_message(response: httpx.Response) -> dict[str, Any] | None:
    """The first entry of ``messages`` in an accepting answer (one destination per send)."""
    messages = json_body(response).get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        return messages[0]
    return None


def message_id(response: httpx.Response) -> str | None:
    entry = first_message(response)
    value = entry.get("messageId") if entry else None
    return str(value) if value else None


def status_rejection(provider: str, response: httpx.Response) -> ProviderError | None:
    """The error a 200's message status means, or ``None`` when the message was accepted."""
    entry = first_message(response)
    status = entry.get("status") if entry else None
    if not isinstance(status, dict):
        return RetryableError(
            provider, "the answer has no message status", status_code=response.status_code
        )
    group = str(status.get("groupName") or "")
    if group in ACCEPTED_GROUPS:
        return None
    name = str(status.get("name") or group or "unknown")
    description = one_line(status.get("description") or "")
    text = f"message {group or 'refused'}: {name}" + (f" ({description})" if description else "")
    error_class = STATUS_ERRORS.get(name, IntegrationError)
    if error_class is RetryableError:
        return RetryableError(provider, text, status_code=response.status_code, provider_code=name)
    return error_class(provider, text, status_code=response.status_code, provider_code=name)


async def balance_check(
    provider: str, credentials: InfobipCredentials, base_url: str, client: httpx.AsyncClient
) -> CheckResult:
    """``GET /account/1/balance``: reads the account's balance, sends nothing."""
    response = await send_request(
        provider, client, "GET", f"{base_url}/account/1/balance", headers=auth_headers(credentials)
    )
    if not response.is_success:
        error = classify_status(provider, response, **_coded(request_error(response)))
        return CheckResult(ok=False, detail=str(error))
    body = json_body(response)
    return CheckResult(
        ok=True, detail=f"API key valid; balance {body.get('balance')} {body.get('currency', '')}"
    )


def _coded(code: ErrorCode | None) -> dict[str, Any]:
    return {"message": code.text, "provider_code": code.code} if code is not None else {}
