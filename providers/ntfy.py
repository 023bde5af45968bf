"""ntfy (publish as JSON): https://docs.ntfy.sh/publish/#publish-as-json

``POST {server}/`` with a JSON body ``{"topic", "message", "title", "priority", "tags",
"markdown", "click", "actions", ...}`` and, when the server requires it, ``Authorization:
Bearer <access token>`` or basic auth (https://docs.ntfy.sh/publish/#authentication). JSON rather
than ``POST {server}/{topic}`` with ``Title``/``Priority``/``Tags`` headers: a header carries
only ASCII, and a title is any text.

A ``push`` provider, not a ``chat`` one: a topic is what the ntfy app on a phone subscribes to,
so it is the subscriber's own address, given like a push device token; the recipient's
``device_tokens`` are their topics, and one message is published per topic. On the public
server anyone who knows a topic may read it, so a topic is treated like a token: never logged
in a URL (it travels in the body) nor quoted in an error.

The server is ``https://ntfy.sh`` unless ``base_url`` names a self-hosted one, which the tenant
chooses and the dispatcher's URL guard checks like every tenant URL.

The answer is the message ``{"id", "time", "event": "message", "topic", ...}``: ``id`` is the
message id. Errors are ``{"code", "http", "error", "link"}``: 40101 (401) is a wrong token or
password (integration); 40301 (403) a topic these credentials may not write and 40009/40010 an
invalid or disallowed topic name, a recipient error for that topic only; 42901-42909 (429,
request, message or e-mail limits) are retried after ``Retry-After``; other 4xx are the
integration's. ``GET /v1/account`` checks credentials (``GET /v1/health`` the server, without
any).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import httpx
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from providers.base import ChannelType, CheckResult, Credentials, LongBody, Message, Settings
from providers.chat_webhook import base_url_validator, redact, response_detail
from providers.errors import IntegrationError, ProviderError, RecipientError
from providers.http import classify_status, json_body, send_request
from providers.http_provider import HttpRequest
from providers.push_fanout import PerTokenHttpProvider, only_token

DEFAULT_SERVER = "https://ntfy.sh"
#: ntfy.sh's default message limit (bytes); a self-hosted server may set another.
MAX_MESSAGE = 4_096

#: ntfy error codes about the topic itself: that topic cannot take the message.
TOPIC_CODES = frozenset({40009, 40010, 40301})

#: ``message.options`` sent as they are.
PASSTHROUGH_OPTIONS = (
    "tags",
    "click",
    "actions",
    "icon",
    "attach",
    "filename",
    "delay",
    "email",
    "call",
)


class NtfyCredentials(Credentials):
    """All optional: the public server and open self-hosted ones take anonymous messages."""

    model_config = ConfigDict(hide_input_in_errors=True)

    #: An access token (``tk_...``), sent as a bearer token.
    access_token: SecretStr | None = None
    #: Basic auth instead of a token.
    username: str | None = None
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password are set together (password missing or alone)")
        if self.access_token is not None and self.username is not None:
            raise ValueError("set access_token or username and password, not both")
        return self


class NtfySettings(Settings):
    #: The ntfy server; a self-hosted one is checked by the URL guard.
    base_url: str = DEFAULT_SERVER
    #: Priority when the message's options set none: 1 (min) to 5 (max), 3 the default.
    priority: int | None = Field(default=None, ge=1, le=5)
    #: Render the message as Markdown in the web app and the Android app.
    markdown: bool = False

    _check_base_url = field_validator("base_url")(base_url_validator("base_url"))


class NtfyProvider(PerTokenHttpProvider[NtfyCredentials, NtfySettings, HttpRequest]):
    """Publishes one ntfy message to each of the recipient's topics."""

    name = "ntfy"
    display_name = "ntfy"
    channel = ChannelType.PUSH
    credentials_model = NtfyCredentials
    settings_model = NtfySettings
    returns_message_id = True
    message_id_key = "id"
    max_body_length = MAX_MESSAGE
    long_body = LongBody.REFUSE

    def build_request(
        self, message: Message, credentials: NtfyCredentials, settings: NtfySettings
    ) -> HttpRequest:
        return HttpRequest(
            "POST",
            f"{settings.base_url}/",
            headers=_headers(credentials),
            json=build_payload(message, only_token(self.name, message), settings),
            auth=_basic(credentials),
        )

    def rejection(self, response: httpx.Response, request: HttpRequest) -> ProviderError | None:
        if response.is_success:
            return None
        topic = str(request.json.get("topic", "")) if isinstance(request.json, dict) else ""
        return _refusal(self.name, response, secrets=_secrets(request, topic))

    async def check(
        self, credentials: NtfyCredentials, settings: NtfySettings, client: httpx.AsyncClient
    ) -> CheckResult | None:
        anonymous = credentials.access_token is None and credentials.username is None
        url = f"{settings.base_url}/v1/{'health' if anonymous else 'account'}"
        try:
            response = await send_request(
                self.name,
                client,
                "GET",
                url,
                headers=_headers(credentials),
                auth=_basic(credentials),
            )
        except ProviderError as error:
            return CheckResult(ok=False, detail=error.reason)
        if not response.is_success:
            secrets = [credentials.access_token, credentials.password]
            plain = [secret.get_secret_value() for secret in secrets if secret is not None]
            return CheckResult(ok=False, detail=_refusal(self.name, response, plain).reason)
        body = json_body(response)
        if anonymous:
            return CheckResult(
                ok=body.get("healthy") is True, detail=f"server healthy: {body.get('healthy')!s}"
            )
        return CheckResult(ok=True, detail=f"account {body.get('username')!s}")


def build_payload(message: Message, topic: str, settings: NtfySettings) -> dict[str, Any]:
    payload: dict[str, Any] = {"topic": topic, "message": message.body or message.title or ""}
    title = message.title or message.subject
    if title and message.body:
        payload["title"] = title
    priority = message.options.get("priority", settings.priority)
    if priority is not None:
        payload["priority"] = priority
    if settings.markdown or message.options.get("markdown"):
        payload["markdown"] = True
    payload.update(
        {name: message.options[name] for name in PASSTHROUGH_OPTIONS if name in message.options}
    )
    return payload


def _headers(credentials: NtfyCredentials) -> Mapping[str, str]:
    if credentials.access_token is None:
        return {}
    return {"Authorization": f"Bearer {credentials.access_token.get_secret_value()}"}


def _basic(credentials: NtfyCredentials) -> tuple[str, str] | None:
    if credentials.username is None or credentials.password is None:
        return None
    return (credentials.username, credentials.password.get_secret_value())


def _secrets(request: HttpRequest, topic: str) -> list[str]:
    found = [topic]
    authorization = request.headers.get("Authorization", "")
    if authorization:
        found.append(authorization.removeprefix("Bearer "))
    if isinstance(request.auth, tuple):
        found.append(request.auth[1])
    return found


def _refusal(provider: str, response: httpx.Response, secrets: list[str]) -> ProviderError:
    status = response.status_code
    body = json_body(response)
    raw_code = body.get("code")
    code = raw_code if isinstance(raw_code, int) else None
    explained = str(body.get("error") or "")
    detail = (
        redact(explained, secrets=secrets)
        if explained
        else response_detail(response, secrets=secrets)
    )
    text = f"HTTP {status}: {detail}"
    provider_code = str(code) if code is not None else None
    if code in TOPIC_CODES or (code is None and status == 403):
        return RecipientError(
            provider,
            f"{text} (the recipient's topic)",
            status_code=status,
            provider_code=provider_code,
        )
    if status < 500 and status not in (408, 429) and not response.is_success:
        return IntegrationError(provider, text, status_code=status, provider_code=provider_code)
    return classify_status(provider, response, message=text, provider_code=provider_code)
