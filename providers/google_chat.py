"""Google Chat incoming webhook: https://developers.google.com/workspace/chat/quickstart/webhooks

A webhook is ``spaces.messages.create``
(https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages/create) called
on ``https://chat.googleapis.com/v1/spaces/<space>/messages?key=<key>&token=<token>``: the ``key``
and ``token`` in the query make the URL the credential (a ``SecretStr``). A subscriber's own
webhook URL must be ``https`` on ``chat.googleapis.com`` with that path.

The JSON body is a Message: ``text`` (Chat's own ``*bold*`` markup), optional ``cardsV2`` and
``thread``. ``requestId`` de-duplicates: "specifying an existing request ID returns the message
created with that ID instead of creating a new message", so the delivery's idempotency key goes
there, and a retried post cannot double. For webhook requests the answer holds only ``name``
(``spaces/<space>/messages/<id>``, the message id) and ``thread.name`` besides the request.

Errors are Google API errors ``{"error": {"code", "message", "status"}}``: 400
``INVALID_ARGUMENT`` is an integration error; 401/403/404 mean the webhook was deleted or refused
(an integration error for the integration's own URL, a recipient error for a subscriber's); 429
``RESOURCE_EXHAUSTED`` and 5xx are retried.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import ConfigDict, SecretStr, field_validator

from providers.base import ChannelType, Credentials, Message, Settings
from providers.chat_webhook import (
    ChatWebhookProvider,
    WebhookPost,
    compose_text,
    passthrough,
    webhook_destination,
    webhook_url_validator,
    with_query,
)
from providers.http import json_body

GOOGLE_CHAT_HOSTS = ("chat.googleapis.com",)
GOOGLE_CHAT_WEBHOOK_PATH = re.compile(r"/v1/spaces/[A-Za-z0-9_-]+/messages")

#: Reply in the thread named by ``options["thread_key"]``, or start it when it does not exist.
REPLY_OPTION = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"

PASSTHROUGH_OPTIONS = ("accessoryWidgets", "cardsV2", "privateMessageViewer")


class GoogleChatCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: ``https://chat.googleapis.com/v1/spaces/.../messages?key=...&token=...``.
    webhook_url: SecretStr

    _check_url = field_validator("webhook_url")(
        webhook_url_validator(allowed_hosts=GOOGLE_CHAT_HOSTS, path=GOOGLE_CHAT_WEBHOOK_PATH)
    )


class GoogleChatSettings(Settings):
    #: Hosts (and their subdomains) a subscriber's own webhook URL may point at.
    allowed_webhook_hosts: tuple[str, ...] = GOOGLE_CHAT_HOSTS


class GoogleChatProvider(ChatWebhookProvider[GoogleChatCredentials, GoogleChatSettings]):
    """Posts a message to a Google Chat space through its incoming webhook."""

    name = "google_chat"
    display_name = "Google Chat (webhook)"
    channel = ChannelType.CHAT
    credentials_model = GoogleChatCredentials
    settings_model = GoogleChatSettings
    returns_message_id = True
    message_id_key = "name"
    supports_idempotency_key = True

    def build_request(
        self, message: Message, credentials: GoogleChatCredentials, settings: GoogleChatSettings
    ) -> WebhookPost:
        destination = webhook_destination(
            self.name,
            message,
            credentials.webhook_url,
            settings.allowed_webhook_hosts,
            path=GOOGLE_CHAT_WEBHOOK_PATH,
        )
        query = {"requestId": message.idempotency_key}
        if message.options.get("thread_key"):
            query["messageReplyOption"] = REPLY_OPTION
        return WebhookPost(
            "POST",
            with_query(destination.url, query),
            json=build_payload(message),
            destination=destination,
        )

    def webhook_code(self, response: httpx.Response, detail: str) -> str | None:
        error = json_body(response).get("error")
        status = error.get("status") if isinstance(error, dict) else None
        return str(status) if status else None


def build_payload(message: Message) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": compose_text(message, lambda title: f"*{title}*")}
    payload.update(passthrough(message.options, PASSTHROUGH_OPTIONS))
    thread_key = message.options.get("thread_key")
    if thread_key:
        payload["thread"] = {"threadKey": str(thread_key)}
    return payload
