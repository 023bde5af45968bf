"""Pushover (Message API): https://pushover.net/api

``POST https://api.pushover.net/1/messages.json`` with a form body ``token=<application API
token>&user=<user or group key>&message=<text>&title=...`` and the optional ``device``,
``priority``, ``sound``, ``url``, ``url_title``, ``ttl``, ``html``, ``timestamp`` (and ``retry``
and ``expire`` for priority 2), taken from ``message.options``.

A ``push`` provider, not a ``chat`` one: Pushover delivers to the devices of a user (or a
group), and the address of that user is their user key, which the subscriber gives like a push
device token and which differs per subscriber. So the recipient's ``device_tokens`` are their
Pushover user (or group) keys, the way a subscriber's own address reaches every push provider,
and one request is sent per key (Pushover allows 2 concurrent requests per application). The
application token is the integration's credential.

The answer is ``{"status": 1, "request": <uuid>}``: ``request`` is the message id. A refusal is
a 4xx with ``{"status": 0, "errors": [...], "<parameter>": "invalid"}``: ``user: invalid`` (or
``device: invalid``) means the key is not a user's, a recipient error for that key; ``token:
invalid`` an integration error; any other 4xx is not retried ("do not resend the same
request"). 429 means the application is over its monthly message limit, retried after its
``Retry-After`` (Pushover counts per calendar month); 5xx are retried. Messages are limited to
1,024 characters and titles to 250. ``GET /1/sounds.json?token=...`` checks the token.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from providers.base import ChannelType, CheckResult, Credentials, LongBody, Message, NoSettings
from providers.chat_webhook import redact, response_detail
from providers.errors import IntegrationError, ProviderError, RecipientError
from providers.http import classify_status, json_body, send_request
from providers.http_provider import HttpRequest
from providers.push_fanout import PerTokenHttpProvider, only_token

API_URL = "https://api.pushover.net/1"
MAX_MESSAGE = 1_024
MAX_TITLE = 250

#: ``message.options`` sent as they are (values as form strings).
OPTION_FIELDS = (
    "device",
    "priority",
    "sound",
    "url",
    "url_title",
    "ttl",
    "html",
    "monospace",
    "timestamp",
    "retry",
    "expire",
    "callback",
    "tags",
)
#: Parameters whose ``invalid`` names the recipient rather than the integration.
RECIPIENT_PARAMETERS = ("user", "device")


class PushoverCredentials(Credentials):
    #: The application's API token.
    app_token: SecretStr


class PushoverProvider(PerTokenHttpProvider[PushoverCredentials, NoSettings, HttpRequest]):
    """Sends a Pushover message to each of the recipient's user (or group) keys."""

    name = "pushover"
    display_name = "Pushover"
    channel = ChannelType.PUSH
    credentials_model = PushoverCredentials
    settings_model = NoSettings
    returns_message_id = True
    message_id_key = "request"
    max_body_length = MAX_MESSAGE
    long_body = LongBody.REFUSE
    #: "Please limit your application to 2 concurrent HTTP requests."
    max_concurrency = 2

    def build_request(
        self, message: Message, credentials: PushoverCredentials, settings: NoSettings
    ) -> HttpRequest:
        return HttpRequest(
            "POST",
            f"{API_URL}/messages.json",
            data=form(message, credentials, only_token(self.name, message)),
        )

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        body = json_body(response)
        if response.is_success and body.get("status") == 1:
            return None
        secret = str(request.data.get("token", "")) if request.data else ""
        return _refusal(self.name, response, body, secret)

    async def check(
        self, credentials: PushoverCredentials, settings: NoSettings, client: httpx.AsyncClient
    ) -> CheckResult | None:
        token = credentials.app_token.get_secret_value()
        url = f"{API_URL}/sounds.json?{httpx.QueryParams({'token': token})}"
        try:
            response = await send_request(self.name, client, "GET", url)
        except ProviderError as error:
            return CheckResult(ok=False, detail=error.reason)
        body = json_body(response)
        if response.is_success and body.get("status") == 1:
            sounds = body.get("sounds")
            return CheckResult(
                ok=True, detail=f"application token accepted ({len(sounds or {})} sounds)"
            )
        return CheckResult(ok=False, detail=_refusal(self.name, response, body, token).reason)


def form(message: Message, credentials: PushoverCredentials, user: str) -> dict[str, str]:
    fields = {
        "token": credentials.app_token.get_secret_value(),
        "user": user,
        "message": message.body or message.title or message.subject or "",
    }
    title = message.title or message.subject
    if title and message.body:
        fields["title"] = title[:MAX_TITLE]
    for name in OPTION_FIELDS:
        value = message.options.get(name)
        if value is not None:
            fields[name] = str(int(value)) if isinstance(value, bool) else str(value)
    return fields


def _refusal(
    provider: str, response: httpx.Response, body: dict[str, Any], token: str
) -> ProviderError:
    status = response.status_code
    errors = body.get("errors")
    explained = "; ".join(str(error) for error in errors) if isinstance(errors, list) else ""
    detail = (
        redact(explained, secrets=[token])
        if explained
        else response_detail(response, secrets=[token])
    )
    text = f"HTTP {status}: {detail}"
    invalid = [name for name, value in body.items() if value == "invalid"]
    code = ",".join(invalid) or None
    if status < 500 and status != 429:
        if any(name in RECIPIENT_PARAMETERS for name in invalid):
            return RecipientError(provider, text, status_code=status, provider_code=code)
        if response.is_success:
            return IntegrationError(
                provider, "Pushover answered without status 1", status_code=status
            )
        return IntegrationError(provider, text, status_code=status, provider_code=code)
    return classify_status(provider, response, message=text, provider_code=code)
