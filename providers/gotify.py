"""Gotify (REST API, create a message): https://gotify.net/api-docs and
https://gotify.net/docs/pushmsg

``POST {server}/message`` with the application token in ``X-Gotify-Key`` and a JSON body
``{"message", "title", "priority", "extras"}``; Markdown is asked for with ``extras:
{"client::display": {"contentType": "text/markdown"}}``
(https://gotify.net/docs/msgextras). The server is the tenant's own: ``base_url`` is a
setting the dispatcher's URL guard checks.

A ``chat`` provider, not a ``push`` one, although Gotify's clients show push notifications:
Gotify has no recipient parameter at all. A message goes to the application whose token sent
it, and so to every client of the user owning that application: the token is the destination
and a secret at once, as an incoming-webhook URL is. So the integration's ``app_token`` posts to
its owner (an operations account, say), for every subscriber without an address of their own,
which a push step, needing a device token, would skip; and a subscriber reaches their own
account with their own message URL, ``https://<server>/message?token=<their application
token>`` (the form Gotify documents for sending), as their ``webhook_url``: ``https`` on the
integration's server or ``allowed_webhook_hosts``, path ``/message``, never quoted in an error.

The answer is the created message ``{"id", "appid", "message", "title", "priority", "date"}``:
``id`` is the message id. Errors are ``{"error", "errorCode", "errorDescription"}``: 401/403 is
a wrong or revoked token (the integration's, or the subscriber's URL); 400 a message Gotify
refuses. Gotify itself does not rate-limit; a 429 or 5xx from a proxy in front is retried. An
application token can do nothing but post, so there is no harmless call to check it with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import ConfigDict, Field, SecretStr, field_validator

from providers.base import ChannelType, Credentials, Message, Settings
from providers.chat_webhook import (
    ChatWebhookProvider,
    Destination,
    WebhookPost,
    base_url_validator,
    redact,
    response_detail,
    url_problem,
    webhook_failure,
)
from providers.errors import ProviderError, RecipientError
from providers.http import json_body

#: ``[/<prefix>]/message``: a server may live under a path prefix.
GOTIFY_MESSAGE_PATH = re.compile(r"(/[^?#]*)?/message")


class GotifyCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: The token of the application messages are sent as (Apps > Create application).
    app_token: SecretStr = Field(min_length=1)


class GotifySettings(Settings):
    #: The Gotify server, ``https://push.example.com``.
    base_url: str
    #: Priority of every message unless ``options["priority"]`` says otherwise (0-10; the
    #: Android app rings from 8 and keeps quiet below 4).
    priority: int | None = Field(default=None, ge=0, le=10)
    #: Clients render the message as Markdown.
    markdown: bool = False
    #: Hosts besides the integration's server that a subscriber's message URL may use.
    allowed_webhook_hosts: tuple[str, ...] = ()

    _check_base_url = field_validator("base_url")(base_url_validator("base_url"))


class GotifyProvider(ChatWebhookProvider[GotifyCredentials, GotifySettings]):
    """Posts a message as a Gotify application."""

    name = "gotify"
    display_name = "Gotify"
    channel = ChannelType.CHAT
    credentials_model = GotifyCredentials
    settings_model = GotifySettings
    returns_message_id = True
    message_id_key = "id"

    def build_request(
        self, message: Message, credentials: GotifyCredentials, settings: GotifySettings
    ) -> WebhookPost:
        payload = build_payload(message, settings)
        theirs = message.to.webhook_url
        if not theirs:
            return WebhookPost(
                "POST",
                f"{settings.base_url}/message",
                headers={"X-Gotify-Key": credentials.app_token.get_secret_value()},
                json=payload,
                destination=Destination(f"{settings.base_url}/message", from_recipient=False),
            )
        own_host = httpx.URL(settings.base_url).host
        problem = url_problem(
            theirs,
            allowed_hosts=(own_host, *settings.allowed_webhook_hosts),
            path=GOTIFY_MESSAGE_PATH,
        )
        if problem is None and not httpx.URL(theirs).params.get("token"):
            problem = "has no token parameter"
        if problem:
            raise RecipientError(self.name, f"the subscriber's message URL {problem}")
        return WebhookPost(
            "POST", theirs, json=payload, destination=Destination(theirs, from_recipient=True)
        )

    def rejection(self, response: httpx.Response, request: WebhookPost) -> ProviderError | None:
        if response.is_success:
            return None
        tokens = [request.headers.get("X-Gotify-Key", "")]
        tokens += httpx.URL(request.destination.url).params.get_list("token")
        detail = _explained(response) or response_detail(response, request.destination.url)
        return webhook_failure(
            self.name,
            response,
            destination=request.destination,
            detail=redact(detail, secrets=tokens),
            code=_code(response),
            retry_after=self.retry_after(response),
        )


def build_payload(message: Message, settings: GotifySettings) -> dict[str, Any]:
    payload: dict[str, Any] = {"message": message.body or message.title or message.subject or ""}
    title = message.title or message.subject
    if title and message.body:
        payload["title"] = title
    priority = message.options.get("priority", settings.priority)
    if priority is not None:
        payload["priority"] = priority
    extras: dict[str, Any] = dict(message.options.get("extras") or {})
    if settings.markdown or message.options.get("markdown"):
        extras["client::display"] = {"contentType": "text/markdown"}
    click = message.options.get("click")
    if click:
        extras["client::notification"] = {"click": {"url": click}}
    if extras:
        payload["extras"] = extras
    return payload


def _explained(response: httpx.Response) -> str:
    body: Mapping[str, Any] = json_body(response)
    parts = [str(body.get(key) or "") for key in ("error", "errorDescription")]
    return ": ".join(part for part in parts if part)


def _code(response: httpx.Response) -> str | None:
    code = json_body(response).get("errorCode")
    return str(code) if code is not None else None
