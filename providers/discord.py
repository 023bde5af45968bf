"""Discord webhook: https://discord.com/developers/docs/resources/webhook#execute-webhook

``POST https://discord.com/api/v10/webhooks/{webhook.id}/{webhook.token}?wait=true`` with a JSON
body ``{content, username, avatar_url, embeds, allowed_mentions, ...}``, or ``multipart/form-data``
with ``payload_json`` and ``files[n]`` when the message has attachments (each listed in
``attachments`` by its ``id``, a snowflake string: ``"n"``). Discord hands out webhook URLs without
an API version, which would get its default version, not the v10 whose body this module builds:
the post always goes to ``/api/v10/`` (:func:`versioned`). The URL is the credential
(a ``SecretStr``); a subscriber's own webhook URL (``message.to.webhook_url``) overrides it and
must be ``https`` on a Discord host with the ``/api/webhooks/...`` path.

``wait=true`` makes Discord confirm the post and answer ``200`` with the created message object,
whose ``id`` is the message id (without it the answer is ``204`` and a message that was not saved
does not even return an error).

Errors carry a JSON ``{"code", "message"}``
(https://discord.com/developers/docs/topics/opcodes-and-status-codes#json): ``10015`` Unknown
Webhook (404) and ``50027`` Invalid Webhook Token (401) mean the webhook is gone, an integration
error for the integration's own URL and a recipient error for a subscriber's; ``50035`` Invalid
Form Body (400) is an integration error. 429 carries ``Retry-After`` and a more precise
``retry_after`` (seconds, float) in the body
(https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit).
"""

from __future__ import annotations

import json
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
    seconds,
    webhook_destination,
    webhook_url_validator,
    with_query,
)
from providers.http import json_body

DISCORD_HOSTS = ("discord.com", "discordapp.com")
#: ``/api[/v10]/webhooks/<snowflake id>/<token>``.
DISCORD_WEBHOOK_PATH = re.compile(r"/api(/v\d+)?/webhooks/\d+/[A-Za-z0-9_-]+")
#: The API version whose Execute Webhook body :func:`build_payload` builds.
API_PREFIX = "/api/v10/"
_ANY_API_PREFIX = re.compile(r"^/api(/v\d+)?/")

#: JSON error codes saying the webhook itself no longer works.
WEBHOOK_GONE_CODES = frozenset({"10015", "50027"})

#: Body fields a workflow step may set through ``message.options``.
PASSTHROUGH_OPTIONS = (
    "allowed_mentions",
    "applied_tags",
    "avatar_url",
    "components",
    "embeds",
    "flags",
    "poll",
    "thread_name",
    "tts",
    "username",
)

#: Mentions Discord may resolve by default: users and roles, never ``@everyone``/``@here`` from
#: a template unless a workflow step sets ``allowed_mentions`` itself.
DEFAULT_ALLOWED_MENTIONS: dict[str, Any] = {"parse": ["users", "roles"]}


class DiscordCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: ``https://discord.com/api/webhooks/<id>/<token>``: the URL is the secret.
    webhook_url: SecretStr

    _check_url = field_validator("webhook_url")(
        webhook_url_validator(allowed_hosts=DISCORD_HOSTS, path=DISCORD_WEBHOOK_PATH)
    )


class DiscordSettings(Settings):
    #: Overrides the webhook's default name and avatar.
    username: str | None = None
    avatar_url: str | None = None
    #: Hosts (and their subdomains) a subscriber's own webhook URL may point at.
    allowed_webhook_hosts: tuple[str, ...] = DISCORD_HOSTS


class DiscordProvider(ChatWebhookProvider[DiscordCredentials, DiscordSettings]):
    """Executes a Discord webhook and keeps the created message's id."""

    name = "discord"
    display_name = "Discord (webhook)"
    channel = ChannelType.CHAT
    credentials_model = DiscordCredentials
    settings_model = DiscordSettings
    returns_message_id = True
    message_id_key = "id"
    #: ``content`` takes up to 2000 characters.
    max_body_length = 2000
    #: ``files[n]``: up to 10 files per message.
    max_attachments = 10
    gone_codes = WEBHOOK_GONE_CODES

    def build_request(
        self, message: Message, credentials: DiscordCredentials, settings: DiscordSettings
    ) -> WebhookPost:
        destination = webhook_destination(
            self.name,
            message,
            credentials.webhook_url,
            settings.allowed_webhook_hosts,
            path=DISCORD_WEBHOOK_PATH,
        )
        query = {"wait": "true"}
        thread_id = message.options.get("thread_id")
        if thread_id:
            query["thread_id"] = str(thread_id)
        url = with_query(versioned(destination.url), query)
        payload = build_payload(message, settings)
        if message.attachments:
            return WebhookPost(
                "POST", url, data=_form(payload), files=_files(message), destination=destination
            )
        return WebhookPost("POST", url, json=payload, destination=destination)

    def webhook_code(self, response: httpx.Response, detail: str) -> str | None:
        code = json_body(response).get("code")
        return str(code) if isinstance(code, int) and not isinstance(code, bool) else None

    def retry_after(self, response: httpx.Response) -> float | None:
        # A 429's body states the wait more precisely than its Retry-After header.
        wait = seconds(json_body(response).get("retry_after"))
        if response.status_code == 429 and wait is not None:
            return wait
        return super().retry_after(response)


def versioned(url: str) -> str:
    """``url`` (a validated webhook URL) on :data:`API_PREFIX`, its query kept."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(path=_ANY_API_PREFIX.sub(API_PREFIX, parsed.path, count=1)))


def build_payload(message: Message, settings: DiscordSettings) -> dict[str, Any]:
    """The documented Execute Webhook body (the JSON part of a multipart post)."""
    payload: dict[str, Any] = {
        "content": compose_text(message, lambda title: f"**{title}**"),
        "allowed_mentions": DEFAULT_ALLOWED_MENTIONS,
    }
    if settings.username:
        payload["username"] = settings.username
    if settings.avatar_url:
        payload["avatar_url"] = settings.avatar_url
    payload.update(passthrough(message.options, PASSTHROUGH_OPTIONS))
    if message.attachments:
        payload["attachments"] = [
            {"id": str(index), "filename": attachment.filename}
            for index, attachment in enumerate(message.attachments)
        ]
    return payload


def _form(payload: dict[str, Any]) -> dict[str, str]:
    return {"payload_json": json.dumps(payload)}


def _files(message: Message) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        (f"files[{index}]", (attachment.filename, attachment.content, attachment.content_type))
        for index, attachment in enumerate(message.attachments)
    ]
