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
from typing import Any, ClassVar, Literal

import httpx
from pydantic import ConfigDict, SecretStr, field_validator

from providers.base import (
    ChannelType,
    CheckResult,
    Credentials,
    Message,
    Provider,
    SendResult,
    Settings,
)
from providers.chat_webhook import (
    chat_destination,
    destination_error,
    heading,
    passthrough,
    redact,
    response_detail,
    seconds,
    url_problem,
)
from providers.errors import IntegrationError, ProviderError, RetryableError
from providers.http import classify_status, json_body, parse_retry_after, send_request

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


class TelegramProvider(Provider[TelegramCredentials, TelegramSettings]):
    """Sends a text message as a Telegram bot."""

    name: ClassVar[str] = "telegram"
    display_name: ClassVar[str] = "Telegram (bot)"
    channel: ClassVar[ChannelType] = ChannelType.CHAT
    credentials_model: ClassVar[type[Credentials]] = TelegramCredentials
    settings_model: ClassVar[type[Settings]] = TelegramSettings
    returns_message_id: ClassVar[bool] = True
    #: "1-4096 characters after entities parsing".
    max_body_length: ClassVar[int | None] = 4096
    #: "no more than 30 messages per second" across chats (bots FAQ).
    rate_limit_per_second: ClassVar[float | None] = 30.0

    async def send(
        self,
        message: Message,
        credentials: TelegramCredentials,
        settings: TelegramSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        chat_id, from_recipient = chat_destination(
            self.name, message, settings.default_chat_id, "default_chat_id"
        )
        payload = build_payload(message, settings, chat_id)
        response = await self._call(credentials, settings, client, "sendMessage", payload)
        body = json_body(response)
        migrate_to = _parameters(body).get("migrate_to_chat_id")
        if body.get("ok") is not True and isinstance(migrate_to, int | str) and migrate_to:
            # The group became a supergroup: same chat, new id; Telegram says to use it.
            payload["chat_id"] = str(migrate_to)
            response = await self._call(credentials, settings, client, "sendMessage", payload)
            body = json_body(response)
        result = _checked(self.name, response, body, credentials, from_recipient=from_recipient)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return SendResult(
            provider_message_id=str(message_id) if message_id is not None else None,
            status_code=response.status_code,
        )

    async def check(
        self,
        credentials: TelegramCredentials,
        settings: TelegramSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        try:
            response = await self._call(credentials, settings, client, "getMe", None)
            result = _checked(
                self.name, response, json_body(response), credentials, from_recipient=False
            )
        except ProviderError as error:
            return CheckResult(ok=False, detail=error.reason)
        username = result.get("username") if isinstance(result, dict) else None
        return CheckResult(ok=True, detail=f"bot @{username!s}")

    async def _call(
        self,
        credentials: TelegramCredentials,
        settings: TelegramSettings,
        client: httpx.AsyncClient,
        method: str,
        payload: dict[str, Any] | None,
    ) -> httpx.Response:
        url = f"{settings.base_url}/bot{credentials.bot_token.get_secret_value()}/{method}"
        if payload is None:
            return await send_request(self.name, client, "POST", url)
        return await send_request(self.name, client, "POST", url, json=payload)


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


def _checked(
    provider: str,
    response: httpx.Response,
    body: dict[str, Any],
    credentials: TelegramCredentials,
    *,
    from_recipient: bool,
) -> Any:
    """``result`` of an ``ok: true`` answer, or the classified error."""
    if response.is_success and body.get("ok") is True:
        return body.get("result")
    token = credentials.bot_token.get_secret_value()
    raw_code = body.get("error_code")
    status = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    status = status or response.status_code
    description = str(body.get("description") or "") or response_detail(response, secrets=[token])
    description = redact(description, secrets=[token])[:300]
    text = f"Telegram error {status}: {description}".strip()
    code = str(status)
    if status == 429 or response.status_code == 429:
        retry_after = seconds(_parameters(body).get("retry_after"))
        if retry_after is None:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise RetryableError(
            provider,
            text,
            status_code=response.status_code,
            provider_code=code,
            retry_after=retry_after,
        )
    if status in (401, 404):
        raise IntegrationError(
            provider,
            f"{text} (the bot token was refused)",
            status_code=response.status_code,
            provider_code=code,
        )
    lowered = description.lower()
    if status == 403 or (status == 400 and any(part in lowered for part in CHAT_ERRORS)):
        whose = "recipient's chat_id" if from_recipient else "default_chat_id setting"
        raise destination_error(from_recipient)(
            provider, f"{text} ({whose})", status_code=response.status_code, provider_code=code
        )
    if response.is_success or status < 500:
        raise IntegrationError(provider, text, status_code=response.status_code, provider_code=code)
    raise classify_status(provider, response, message=text, provider_code=code)
