"""Matrix (client-server API, send an event to a room):
https://spec.matrix.org/v1.14/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid

``PUT {homeserver}/_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`` with
``Authorization: Bearer <access token>`` and the event content ``{"msgtype": "m.text", "body",
"format": "org.matrix.custom.html", "formatted_body"}``. The homeserver is the tenant's own
choice: ``base_url`` is a setting the dispatcher's URL guard checks.

``txnId`` is the idempotency key: the homeserver answers a repeated transaction id from the same
access token with the event it already created, so it is the delivery's
:attr:`~providers.base.Message.idempotency_key` and a retried send posts nothing twice.

Where a message goes: the recipient's ``chat_id``, else the ``room_id`` setting; it must be a
room id (``!opaque:server``) the bot has joined. Room aliases (``#room:server``) and user ids are
refused before sending: resolving an alias or opening a direct room are further requests with
their own failures, left to whoever sets the address up.

The answer is ``{"event_id": "$..."}``: the message id. Errors are ``{"errcode", "error"}``
(https://spec.matrix.org/v1.14/client-server-api/#standard-error-response):

* ``M_UNKNOWN_TOKEN``, ``M_MISSING_TOKEN`` (401), ``M_USER_LOCKED``, ``M_USER_SUSPENDED``: the
  integration's token cannot be used;
* ``M_FORBIDDEN`` (403: the bot is not in the room or may not post there) and ``M_NOT_FOUND``
  (no such room): the room refuses, a recipient error when it was the subscriber's ``chat_id``
  and an integration error when it was the ``room_id`` setting, as for every chat provider here
  (one subscriber's room the bot left must not open the integration's circuit for everyone);
* ``M_LIMIT_EXCEEDED`` (429): retried after ``retry_after_ms`` (or the ``Retry-After`` header
  that newer homeservers also send);
* ``M_TOO_LARGE`` (413): this message is over the event size limit, a recipient error.

``GET /_matrix/client/v3/account/whoami`` checks the token.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ConfigDict, SecretStr, field_validator

from providers.base import ChannelType, CheckResult, Credentials, LongBody, Message, Settings
from providers.chat_webhook import (
    BotPost,
    base_url_validator,
    chat_destination,
    destination_error,
    heading,
    redact,
    response_detail,
    seconds,
)
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.http import classify_status, json_body, retry_after_header, send_request
from providers.http_provider import HttpProvider

CLIENT_API = "/_matrix/client/v3"
HTML_FORMAT = "org.matrix.custom.html"

AUTH_ERRORS = frozenset({"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_USER_LOCKED", "M_USER_SUSPENDED"})
ROOM_ERRORS = frozenset({"M_FORBIDDEN", "M_NOT_FOUND"})


class MatrixCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: The bot account's access token (one device: transaction ids are scoped to it).
    access_token: SecretStr


class MatrixSettings(Settings):
    #: The homeserver's client-server API base, ``https://matrix.example.org``.
    base_url: str
    #: Room id (``!opaque:server``) used when the recipient has no ``chat_id``.
    room_id: str | None = None
    #: ``m.text``, or ``m.notice`` for a bot's messages (clients' default push rules keep
    #: notices silent).
    msgtype: str = "m.text"

    _check_base_url = field_validator("base_url")(base_url_validator("base_url"))


class MatrixProvider(HttpProvider[MatrixCredentials, MatrixSettings, BotPost]):
    """Sends an ``m.room.message`` event into a room the bot has joined."""

    name = "matrix"
    display_name = "Matrix"
    channel = ChannelType.CHAT
    credentials_model = MatrixCredentials
    settings_model = MatrixSettings
    returns_message_id = True
    message_id_key = "event_id"
    supports_idempotency_key = True
    supports_html = True
    #: Events are at most 65,536 bytes, plain and HTML bodies together (``M_TOO_LARGE``).
    max_body_length = 20_000
    long_body = LongBody.REFUSE

    def build_request(
        self, message: Message, credentials: MatrixCredentials, settings: MatrixSettings
    ) -> BotPost:
        room, from_recipient = chat_destination(self.name, message, settings.room_id, "room_id")
        if not room.startswith("!") or ":" not in room:
            error = RecipientError if from_recipient else IntegrationError
            whose = "the recipient's chat_id" if from_recipient else "the room_id setting"
            raise error(self.name, f"{whose} is not a room id (!opaque:server)")
        url = (
            f"{settings.base_url}{CLIENT_API}/rooms/{quote(room, safe='')}"
            f"/send/m.room.message/{quote(message.idempotency_key, safe='')}"
        )
        return BotPost(
            "PUT",
            url,
            headers=_headers(credentials),
            json=build_content(message, settings),
            from_recipient=from_recipient,
            token=credentials.access_token,
        )

    def rejection(self, response: httpx.Response, request: BotPost) -> ProviderError | None:
        if response.is_success:
            return None
        return _refusal(self.name, response, request)

    async def check(
        self, credentials: MatrixCredentials, settings: MatrixSettings, client: httpx.AsyncClient
    ) -> CheckResult | None:
        url = f"{settings.base_url}{CLIENT_API}/account/whoami"
        try:
            response = await send_request(
                self.name, client, "GET", url, headers=_headers(credentials)
            )
        except ProviderError as error:
            return CheckResult(ok=False, detail=error.reason)
        if not response.is_success:
            probe = BotPost("GET", url, from_recipient=False, token=credentials.access_token)
            return CheckResult(ok=False, detail=_refusal(self.name, response, probe).reason)
        body = json_body(response)
        return CheckResult(
            ok=True, detail=f"user {body.get('user_id')!s}, device {body.get('device_id')!s}"
        )


def build_content(message: Message, settings: MatrixSettings) -> dict[str, Any]:
    """The event content: the heading and body as plain text, and as HTML (the message's own
    HTML part when it has one)."""
    title = heading(message)
    plain = "\n".join(part for part in (title, message.body) if part)
    content: dict[str, Any] = {"msgtype": settings.msgtype, "body": plain}
    if message.html:
        formatted = message.html
    elif title:
        lines = html.escape(message.body).replace("\n", "<br>")
        formatted = f"<strong>{html.escape(title)}</strong>" + (f"<br>{lines}" if lines else "")
    else:
        return content
    content.update({"format": HTML_FORMAT, "formatted_body": formatted})
    return content


def _headers(credentials: MatrixCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.access_token.get_secret_value()}"}


def _refusal(provider: str, response: httpx.Response, request: BotPost) -> ProviderError:
    status = response.status_code
    secret = request.token.get_secret_value()
    body = json_body(response)
    code = str(body.get("errcode") or "") or None
    explained = str(body.get("error") or "")
    detail = (
        redact(explained, secrets=[secret])
        if explained
        else response_detail(response, secrets=[secret])
    )
    text = f"HTTP {status}: {code + ' ' if code else ''}{detail}".rstrip()
    if code == "M_LIMIT_EXCEEDED" or status == 429:
        waited = seconds(body.get("retry_after_ms"))
        wait = retry_after_header(response)
        if wait is None and waited is not None:
            wait = waited / 1000
        return RetryableError(
            provider, text, status_code=status, provider_code=code, retry_after=wait
        )
    if code in AUTH_ERRORS:
        return IntegrationError(provider, text, status_code=status, provider_code=code)
    if code in ROOM_ERRORS:
        whose = "recipient's chat_id" if request.from_recipient else "room_id setting"
        return destination_error(request.from_recipient)(
            provider, f"{text} ({whose})", status_code=status, provider_code=code
        )
    if code == "M_TOO_LARGE" or status == 413:
        return RecipientError(
            provider, f"{text}: message refused", status_code=status, provider_code=code
        )
    return classify_status(provider, response, message=text, provider_code=code)
