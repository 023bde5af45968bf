"""Telegram Bot API sendMessage: https://core.telegram.org/bots/api#sendmessage

``POST https://api.telegram.org/bot<token>/sendMessage`` with a JSON body ``{chat_id, text,
parse_mode | entities, ...}``. The bot token is part of the URL path, so neither the URL nor the
token may reach an error: transport errors never name the URL (``send_request``) and every answer
text is redacted.

Every answer is ``{"ok": bool, ...}`` (https://core.telegram.org/bots/api#making-requests):
``result`` holds the sent Message on success (``result.message_id`` is the message id, unique
within its chat); a failure has ``error_code``, ``description`` and sometimes ``parameters``
(``retry_after`` seconds on 429 flood control, ``migrate_to_chat_id`` when a group became a
supergroup, which is followed once). 401 and 404 mean the token is wrong. 403 (``bot was blocked
by the user``, ``bot was kicked``, ``user is deactivated``...) and the chat-not-found family of
400s mean the chat refuses the bot: a recipient error when the chat was the subscriber's
``chat_id``, an integration error when it was the ``default_chat_id`` setting.

``getMe`` (https://core.telegram.org/bots/api#getme) checks the token without sending anything.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any, Literal

import httpx
from pydantic import ConfigDict, SecretStr, field_validator

from providers.base import ChannelType, CheckResult, Credentials, Message, Settings
from providers.chat_webhook import (
    BotPost,
    chat_destination,
    destination_error,
    heading,
    passthrough,
    redact,
    response_detail,
    seconds,
    url_problem,
)
from providers.errors import MAX_DETAIL, IntegrationError, ProviderError, RetryableError
from providers.http import classify_status, json_body, retry_after_header, send_request
from providers.http_provider import HttpProvider

#: ``<bot id>:<secret>``, as BotFather issues it; anything else could alter the URL path.
TOKEN_PATTERN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{20,}")

#: ``description`` fragments of 400 answers that mean the chat cannot be reached by this bot.
CHAT_ERRORS = (
    "chat not found",
    "user not found",
    "peer_id_invalid",
    "group chat was deactivated",
    "chat_write_forbidden",
    "need administrator rights",
    "not enough rights to send text messages",
    "have no rights to send a message",
    "topic_closed",
    "message thread not found",
)

#: Characters MarkdownV2 requires escaping outside entities.
_MARKDOWN_V2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")

PASSTHROUGH_OPTIONS = (
    "business_connection_id",
    "disable_notification",
    "link_preview_options",
    "message_effect_id",
    "message_thread_id",
    "protect_content",
    "reply_markup",
    "reply_parameters",
)


class TelegramCredentials(Credentials):
    model_config = ConfigDict(hide_input_in_errors=True)

    #: The token BotFather issued: ``123456789:AA...``.
    bot_token: SecretStr

    @field_validator("bot_token")
    @classmethod
    def _looks_like_a_token(cls, value: SecretStr) -> SecretStr:
        if not TOKEN_PATTERN.fullmatch(value.get_secret_value()):
            raise ValueError("bot_token must look like 123456789:AA... (as BotFather issues it)")
        return value


class TelegramSettings(Settings):
    #: Chat id (``-100...``, a user id) or ``@channelusername`` used when the recipient has no
    #: ``chat_id``.
    default_chat_id: str | None = None
    #: ``None`` sends plain text (the heading is bolded with an entity); ``HTML`` or
    #: ``MarkdownV2`` when templates render that markup.
    parse_mode: Literal["HTML", "MarkdownV2"] | None = None
    disable_notification: bool = False
    #: A local Bot API server, if the organisation runs one.
    base_url: str = "https://api.telegram.org"

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise ValueError(f"base_url {problem}")
        return value.rstrip("/")


class TelegramProvider(HttpProvider[TelegramCredentials, TelegramSettings, BotPost]):
    """Sends a text message as a Telegram bot."""

    name = "telegram"
    display_name = "Telegram (bot)"
    channel = ChannelType.CHAT
    credentials_model = TelegramCredentials
    settings_model = TelegramSettings
    returns_message_id = True
    #: "1-4096 characters after entities parsing".
    max_body_length = 4096
    #: "no more than 30 messages per second" across chats (bots FAQ).
    rate_limit_per_second = 30.0

    def build_request(
        self, message: Message, credentials: TelegramCredentials, settings: TelegramSettings
    ) -> BotPost:
        chat_id, from_recipient = chat_destination(
            self.name, message, settings.default_chat_id, "default_chat_id"
        )
        return BotPost(
            "POST",
            _method_url(credentials, settings, "sendMessage"),
            json=build_payload(message, settings, chat_id),
            from_recipient=from_recipient,
            token=credentials.bot_token,
        )

    async def exchange(self, client: httpx.AsyncClient, request: BotPost) -> httpx.Response:
        response = await super().exchange(client, request)
        body = json_body(response)
        migrate_to = _parameters(body).get("migrate_to_chat_id")
        if body.get("ok") is not True and isinstance(migrate_to, int | str) and migrate_to:
            # The group became a supergroup: same chat, new id; Telegram says to use it.
            moved = replace(request, json={**request.json, "chat_id": str(migrate_to)})
            response = await super().exchange(client, moved)
        return response

    def rejection(self, response: httpx.Response, request: BotPost) -> ProviderError | None:
        return _refusal(self.name, response, request.token, from_recipient=request.from_recipient)

    def message_id(self, response: httpx.Response) -> str | None:
        result = json_body(response).get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return str(message_id) if message_id is not None else None

    async def check(
        self,
        credentials: TelegramCredentials,
        settings: TelegramSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        try:
            url = _method_url(credentials, settings, "getMe")
            response = await send_request(self.name, client, "POST", url)
        except ProviderError as error:
            return CheckResult(ok=False, detail=error.reason)
        refusal = _refusal(self.name, response, credentials.bot_token, from_recipient=False)
        if refusal is not None:
            return CheckResult(ok=False, detail=refusal.reason)
        result = json_body(response).get("result")
        username = result.get("username") if isinstance(result, dict) else None
        return CheckResult(ok=True, detail=f"bot @{username!s}")


def _method_url(credentials: TelegramCredentials, settings: TelegramSettings, method: str) -> str:
    return f"{settings.base_url}/bot{credentials.bot_token.get_secret_value()}/{method}"


def build_payload(message: Message, settings: TelegramSettings, chat_id: str) -> dict[str, Any]:
    """The ``sendMessage`` body: the heading in bold, a newline, then the body."""
    payload: dict[str, Any] = {"chat_id": chat_id}
    title = heading(message)
    body = message.body
    if settings.parse_mode is None:
        payload["text"] = f"{title}\n{body}" if title and body else (title or body)
        if title:
            # Entity offsets and lengths count UTF-16 code units.
            length = len(title.encode("utf-16-le")) // 2
            payload["entities"] = [{"type": "bold", "offset": 0, "length": length}]
    else:
        payload["parse_mode"] = settings.parse_mode
        if title:
            bold = (
                f"<b>{html.escape(title, quote=False)}</b>"
                if settings.parse_mode == "HTML"
                else f"*{escape_markdown_v2(title)}*"
            )
            payload["text"] = f"{bold}\n{body}" if body else bold
        else:
            payload["text"] = body
    if settings.disable_notification:
        payload["disable_notification"] = True
    payload.update(passthrough(message.options, PASSTHROUGH_OPTIONS))
    return payload


def escape_markdown_v2(text: str) -> str:
    """``text`` with every MarkdownV2 special character backslash-escaped."""
    return _MARKDOWN_V2_SPECIAL.sub(r"\\\1", text)


def _parameters(body: dict[str, Any]) -> dict[str, Any]:
    parameters = body.get("parameters")
    return parameters if isinstance(parameters, dict) else {}


def _refusal(
    provider: str,
    response: httpx.Response,
    bot_token: SecretStr,
    *,
    from_recipient: bool,
) -> ProviderError | None:
    """The classified error of an answer, ``None`` for an ``ok: true`` one."""
    body = json_body(response)
    if response.is_success and body.get("ok") is True:
        return None
    token = bot_token.get_secret_value()
    raw_code = body.get("error_code")
    status = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    status = status or response.status_code
    description = str(body.get("description") or "") or response_detail(response, secrets=[token])
    description = redact(description, secrets=[token])[:MAX_DETAIL]
    text = f"Telegram error {status}: {description}".strip()
    code = str(status)
    if status == 429 or response.status_code == 429:
        retry_after = seconds(_parameters(body).get("retry_after"))
        if retry_after is None:
            retry_after = retry_after_header(response)
        return RetryableError(
            provider,
            text,
            status_code=response.status_code,
            provider_code=code,
            retry_after=retry_after,
        )
    if status in (401, 404):
        return IntegrationError(
            provider,
            f"{text} (the bot token was refused)",
            status_code=response.status_code,
            provider_code=code,
        )
    lowered = description.lower()
    if status == 403 or (status == 400 and any(part in lowered for part in CHAT_ERRORS)):
        whose = "recipient's chat_id" if from_recipient else "default_chat_id setting"
        return destination_error(from_recipient)(
            provider, f"{text} ({whose})", status_code=response.status_code, provider_code=code
        )
    if response.is_success or status < 500:
        return IntegrationError(
            provider, text, status_code=response.status_code, provider_code=code
        )
    return classify_status(provider, response, message=text, provider_code=code)
