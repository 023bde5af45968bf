"""WhatsApp Business Platform, Cloud API: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages

On the ``chat`` channel, addressed by the recipient's phone number: WhatsApp is a conversation
app (replies, a 24-hour customer service window, read receipts), not a carrier text message,
and a workflow's chat step is where its content (templates, interactive parts) belongs; the
``sms`` channel keeps the promise of reaching any phone. The number is checked as E.164 before
any request, as the SMS providers do.

``POST https://graph.facebook.com/{version}/{phone number id}/messages`` with
``Authorization: Bearer <access token>`` (a system user's token) and JSON::

    {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+16505551234",
     "type": "text", "text": {"body": "...", "preview_url": false}}

or, when the message's ``options.template`` names an approved template (``name``, ``language``
as a code such as ``en_US``, optional ``components`` as the API takes them)::

    {..., "type": "template", "template": {"name", "language": {"code"}, "components": [...]}}

A 200 answers ``{"messaging_product", "contacts": [{"input", "wa_id"}], "messages": [{"id":
"wamid..."}]}``; ``messages[0].id`` is the message id. The API takes no idempotency key.

Errors (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes) are Graph
API errors, ``{"error": {"message", "type", "code", "error_data": {"details"}, "error_subcode",
"fbtrace_id"}}``, classified by ``code``:

* 131047 (re-engagement: more than 24 hours since the recipient last wrote) is a recipient
  error: only a template, or the recipient writing first, reopens the window, so neither a
  retry nor another integration sends this free-form message; 131026 (undeliverable: not on
  WhatsApp, old app version, or the recipient blocked the business), 131030 (not in the test
  number's allowed list), 131021 (recipient is the sender) and 131050 (stopped marketing
  messages) are recipient errors too;
* 0, 190 (``OAuthException``: the token is invalid or expired), 3, 10 and 200-299 (permission),
  33 and 100 (an unknown phone number id or invalid parameter), account and template problems
  (131031 locked, 131042 payment, 132000-132016 template missing, paused or mismatched, 133010
  number not registered, 368 policy block) are integration errors;
* 4, 80007, 130429 (throughput), 131048 (spam rate limit), 131056 (too many messages to one
  recipient), 1, 2, 131000, 131016 and 131057 (service trouble, maintenance) are retried, after
  the ``Retry-After`` when there is one; so is any 5xx.

``GET /{version}/{phone number id}?fields=display_phone_number,verified_name`` reads the sender
number without sending anything: the credentials check.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

import httpx
from pydantic import Field, SecretStr, field_validator

from providers.base import ChannelType, CheckResult, Credentials, Message, RateLimitSettings
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.http import ErrorClass, json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.sms_common import message_text, one_line, recipient_number

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v22.0"

#: "The maximum length of a text message body is 4096 characters."
MAX_TEXT = 4096

#: More than 24 hours since the recipient last wrote: only a template may be sent.
REENGAGEMENT = "131047"

_RECIPIENT = ("131021", "131026", "131030", REENGAGEMENT, "131050")
_INTEGRATION = (
    "0", "3", "10", "33", "100", "190", "368",
    "131031", "131042", "131045", "132000", "132001", "132005", "132007", "132012", "132015",
    "132016", "133010",
    # 200-299: "API Permission", a permission the token lacks.
    *(str(code) for code in range(200, 300)),
)  # fmt: skip
_RETRYABLE = ("1", "2", "4", "80007", "130429", "131000", "131016", "131048", "131056", "131057")

#: Graph API error codes and the class each means, whatever the HTTP status says.
ERROR_CODES: MappingProxyType[str, ErrorClass] = MappingProxyType(
    {
        **dict.fromkeys(_RECIPIENT, RecipientError),
        **dict.fromkeys(_INTEGRATION, IntegrationError),
        **dict.fromkeys(_RETRYABLE, RetryableError),
    }
)

_VERSION = re.compile(r"^v\d{1,3}\.\d{1,3}$")


class WhatsAppCredentials(Credentials):
    #: A system user's (or the app's temporary) access token with whatsapp_business_messaging.
    access_token: SecretStr


class WhatsAppSettings(RateLimitSettings):
    """``rate_limit_per_second`` paces the sender number (Cloud API: 80 messages a second by
    default, up to 1,000 once Meta raises it)."""

    #: The business phone number's id (not the number itself), from the WhatsApp Manager.
    phone_number_id: str = Field(pattern=r"^\d{1,30}$")
    api_version: str = DEFAULT_API_VERSION
    #: Whether WhatsApp shows a preview of the first URL of a text message.
    preview_url: bool = False
    #: Override for a test server or a proxy.
    base_url: str = DEFAULT_BASE_URL

    @field_validator("api_version")
    @classmethod
    def _is_version(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError("api_version must look like v22.0")
        return value


class WhatsAppProvider(HttpProvider[WhatsAppCredentials, WhatsAppSettings]):
    name = "whatsapp_business"
    display_name = "WhatsApp Business (Cloud API)"
    channel = ChannelType.CHAT
    credentials_model = WhatsAppCredentials
    settings_model = WhatsAppSettings
    returns_message_id = True
    max_body_length = MAX_TEXT
    rate_limit_per_second = 80.0
    error_codes = ERROR_CODES

    def build_request(
        self, message: Message, credentials: WhatsAppCredentials, settings: WhatsAppSettings
    ) -> HttpRequest:
        return HttpRequest(
            "POST",
            f"{_number_url(settings)}/messages",
            headers=_auth(credentials),
            json=build_body(self.name, message, recipient_number(self.name, message), settings),
        )

    async def check(
        self,
        credentials: WhatsAppCredentials,
        settings: WhatsAppSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            _number_url(settings),
            headers=_auth(credentials),
            params={"fields": "display_phone_number,verified_name"},
        )
        if not response.is_success:
            return CheckResult(ok=False, detail=str(self.classify(response)))
        body = json_body(response)
        number = one_line(body.get("display_phone_number") or "unknown number", 40)
        name = one_line(body.get("verified_name") or "no verified name", 80)
        return CheckResult(ok=True, detail=f"sender {number} ({name})")

    def message_id(self, response: httpx.Response) -> str | None:
        messages = json_body(response).get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            message_id = messages[0].get("id")
            return str(message_id) if message_id else None
        return None

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        error = json_body(response).get("error")
        if not isinstance(error, dict) or error.get("code") is None:
            return None
        code = str(error["code"])
        data = error.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        detail = one_line(details or error.get("message") or "")
        text = f"HTTP {response.status_code}: {code}: {detail}"
        if code == REENGAGEMENT:
            text = f"{text} (outside the 24-hour window: send a template, options.template)"
        return ErrorCode(code, text, detail)


def build_body(
    provider: str, message: Message, to: str, settings: WhatsAppSettings
) -> dict[str, Any]:
    """The documented send-message body for one recipient: a template when the message's
    ``options.template`` names one, else a text message."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
    }
    template = message.options.get("template")
    if template is None:
        body["type"] = "text"
        body["text"] = {
            "body": message_text(provider, message),
            "preview_url": settings.preview_url,
        }
        return body
    body["type"] = "template"
    body["template"] = template_object(provider, template)
    return body


def template_object(provider: str, template: Any) -> dict[str, Any]:
    """``options.template`` as the API's ``template`` object; its faults name the field."""
    if not isinstance(template, dict):
        raise RecipientError(provider, "options.template must be an object")
    name = template.get("name")
    if not isinstance(name, str) or not name:
        raise RecipientError(provider, "options.template.name is required")
    language = template.get("language")
    if isinstance(language, dict):
        language = language.get("code")
    if not isinstance(language, str) or not language:
        raise RecipientError(provider, "options.template.language is required (a code: en_US)")
    result: dict[str, Any] = {"name": name, "language": {"code": language}}
    components = template.get("components")
    if components is not None:
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            raise RecipientError(provider, "options.template.components must be a list of objects")
        result["components"] = components
    return result


def _auth(credentials: WhatsAppCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.access_token.get_secret_value()}"}


def _number_url(settings: WhatsAppSettings) -> str:
    return f"{settings.base_url.rstrip('/')}/{settings.api_version}/{settings.phone_number_id}"
