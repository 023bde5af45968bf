"""Helpers shared by the chat providers (Slack, Discord, Teams, Google Chat, Mattermost, Telegram).

Most chat integrations post to an incoming-webhook URL that carries its secret in the URL itself,
so the URL is a ``SecretStr`` credential, and a subscriber may bring their own URL
(``message.to.webhook_url``). Three rules follow:

* a subscriber's URL must be ``https`` on the provider's own hosts (default port, no user info,
  the provider's webhook path), or the worker would POST wherever a subscriber profile points
  (server-side request forgery);
* no URL, path segment or query value of it may reach an error message (:func:`redact`);
* nor may it reach a log line: ``httpx`` logs every request's full URL at INFO, so importing
  this module installs :class:`RequestLogRedactor` on the ``httpx`` logger, which keeps only the
  scheme and host of a logged URL;
* a destination that is gone or refuses posts is the integration's problem when the integration
  chose it (its own webhook URL, its default channel) and the recipient's problem when the
  subscriber did (their own URL or chat id): :func:`destination_error`.

:class:`ChatWebhookProvider` is the :class:`~providers.http_provider.HttpProvider` of the
webhook providers: their request is a :class:`WebhookPost`, which keeps the :class:`Destination`
for classifying the answer. Bot APIs post a :class:`BotPost`.

Telegram's bot token travels in the URL path too, so the redaction helpers serve it as well.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from providers.base import CredentialsT, Message, SettingsT
from providers.errors import IntegrationError, ProviderError, RecipientError, RetryableError
from providers.http import MAX_ERROR_DETAIL, REDACTED, classify_status
from providers.http_provider import HttpProvider, HttpRequest
from providers.retry_after import bounded_wait

#: Shorter URL pieces (``services``, ``api``, ``webhooks``, Slack's ``T0123ABCD`` team ids) are
#: not secret and stay readable.
MIN_SECRET_PIECE = 16

#: Statuses of a webhook endpoint that no longer exists or refuses its caller.
GONE_STATUSES: frozenset[int] = frozenset({401, 403, 404, 410})


@dataclass(frozen=True)
class Destination:
    """Where a post goes; ``url`` is a secret and stays out of the repr."""

    url: str = field(repr=False)
    #: The subscriber chose it (their own webhook URL or chat id), not the integration.
    from_recipient: bool


@dataclass(frozen=True, kw_only=True)
class WebhookPost(HttpRequest):
    """A post to a chat webhook, with what its answer's classification needs."""

    destination: Destination
    #: Whether the subscriber chose the post's channel override (Mattermost's ``channel`` from
    #: their ``chat_id``); ``None`` when the post names no channel.
    channel_from_recipient: bool | None = None


@dataclass(frozen=True, kw_only=True)
class BotPost(HttpRequest):
    """A bot API call posting into a chat (Slack's ``chat.postMessage``, Telegram's
    ``sendMessage``), with what its answer's classification needs."""

    #: The chat was the subscriber's ``chat_id``, not the integration's default.
    from_recipient: bool
    #: The bot token, which no error may quote.
    token: SecretStr = field(repr=False)


class ChatWebhookProvider(HttpProvider[CredentialsT, SettingsT, WebhookPost]):
    """A webhook provider: a refused post is classified by :func:`webhook_failure`."""

    #: Codes (see :meth:`webhook_code`) saying the webhook itself is gone, whatever the status.
    gone_codes: ClassVar[frozenset[str]] = frozenset()

    def rejection(self, response: httpx.Response, request: WebhookPost) -> ProviderError | None:
        if response.is_success:
            return None
        detail = response_detail(response, request.destination.url)
        code = self.webhook_code(response, detail)
        gone = GONE_STATUSES | {response.status_code} if code in self.gone_codes else GONE_STATUSES
        return webhook_failure(
            self.name,
            response,
            destination=request.destination,
            detail=detail,
            code=code,
            retry_after=self.retry_after(response),
            gone_statuses=gone,
        )

    def webhook_code(self, response: httpx.Response, detail: str) -> str | None:
        """The provider's error code in a refused answer; ``detail`` is its redacted text."""
        return None


# -- URL checks --------------------------------------------------------------------------------


def host_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    """``host`` is one of ``allowed_hosts`` or a subdomain of one."""
    host = host.lower().rstrip(".")
    names = (allowed.lower().strip(".") for allowed in allowed_hosts)
    return any(name and (host == name or host.endswith(f".{name}")) for name in names)


def url_problem(
    raw: str,
    *,
    allowed_hosts: Collection[str] | None = None,
    path: re.Pattern[str] | None = None,
) -> str | None:
    """Why ``raw`` is not an acceptable webhook URL, or ``None`` when it is.

    The answer never quotes the URL. ``allowed_hosts=None`` accepts any host.
    """
    try:
        url = httpx.URL(raw)
        host = url.host  # decodes an IDNA host, which may fail only now
    except (httpx.InvalidURL, ValueError, TypeError):
        return "is not a URL"
    checks = (
        (url.scheme != "https" or not host, "must be an https URL"),
        (bool(url.userinfo), "must not carry a user name or password"),
        (url.port not in (None, 443), "must use the default https port"),
        (
            allowed_hosts is not None and not host_allowed(host, allowed_hosts),
            "must be on " + (", ".join(sorted(allowed_hosts or ())) or "an allowed host"),
        ),
        (path is not None and not path.fullmatch(url.path), "does not have the webhook path"),
    )
    return next((problem for failed, problem in checks if failed), None)


def webhook_url_validator(
    *,
    allowed_hosts: Collection[str] | None = None,
    path: re.Pattern[str] | None = None,
) -> Callable[[SecretStr], SecretStr]:
    """A pydantic ``field_validator`` body for a ``webhook_url: SecretStr`` credential.

    Credentials models using it must set ``hide_input_in_errors=True``: pydantic otherwise
    quotes the raw input (the secret URL) in its validation error.
    """

    def check(value: SecretStr) -> SecretStr:
        problem = url_problem(value.get_secret_value(), allowed_hosts=allowed_hosts, path=path)
        if problem:
            raise ValueError(f"the webhook URL {problem}")
        return value

    return check


def base_url_validator(setting: str) -> Callable[[str], str]:
    """A pydantic ``field_validator`` body for a server's base URL the tenant chooses (a
    self-hosted chat server, a homeserver): ``https`` on the default port, no user info, query
    or fragment (a path prefix is kept), returned without its trailing ``/``. The URL is not a
    secret; the dispatcher's guard checks where it leads when it connects."""

    def check(value: str) -> str:
        problem = url_problem(value)
        if problem is None and (httpx.URL(value).query or "#" in value):
            problem = "must not carry a query or fragment"
        if problem:
            raise ValueError(f"{setting} {problem}")
        return value.rstrip("/")

    return check


def webhook_destination(
    provider: str,
    message: Message,
    configured: SecretStr | None,
    allowed_hosts: Collection[str],
    *,
    path: re.Pattern[str] | None = None,
) -> Destination:
    """The subscriber's own webhook URL when they have one, else the integration's.

    Raises :class:`RecipientError` for a subscriber URL that is not ``https`` on
    ``allowed_hosts`` with the provider's ``path``, :class:`IntegrationError` when neither URL
    is set.
    """
    raw = message.to.webhook_url
    if not raw:
        if configured is None or not configured.get_secret_value():
            raise IntegrationError(provider, "no webhook URL configured for this integration")
        return Destination(configured.get_secret_value(), from_recipient=False)
    problem = url_problem(raw, allowed_hosts=allowed_hosts, path=path)
    if problem:
        raise RecipientError(provider, f"the subscriber's webhook URL {problem}")
    return Destination(raw, from_recipient=True)


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to (not replacing) its own query string.

    ``httpx``'s ``params=`` argument replaces a URL's query, which would drop the ``key`` and
    ``token`` of a Google Chat webhook or the ``thread_id`` of a Discord one.
    """
    return str(httpx.URL(url).copy_merge_params(dict(params)))


def redact(text: str, *urls: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without ``secrets``, any of ``urls``, their long path segments or query values."""
    pieces: list[str] = [secret for secret in secrets if secret]
    for url in urls:
        if not url:
            continue
        pieces.append(url)
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError):
            continue
        pieces += [
            segment for segment in parsed.path.split("/") if len(segment) >= MIN_SECRET_PIECE
        ]
        pieces += [
            value for _, value in parsed.params.multi_items() if len(value) >= MIN_SECRET_PIECE
        ]
        if parsed.userinfo:
            pieces.append(parsed.userinfo.decode("ascii", "replace"))
    for piece in sorted(set(pieces), key=len, reverse=True):
        text = text.replace(piece, REDACTED)
    return text


def response_detail(response: httpx.Response, *urls: str, secrets: Iterable[str] = ()) -> str:
    """A short, single-line, redacted excerpt of an answer's body for attempt records."""
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
    # Redact before shortening, so a secret cut in half by the limit cannot survive.
    return redact(" ".join(text.split()), *urls, secrets=secrets)[:MAX_ERROR_DETAIL]


# -- Classification ----------------------------------------------------------------------------


def destination_error(from_recipient: bool) -> type[ProviderError]:
    """The class for a destination that is gone or refuses posts, by who chose it."""
    return RecipientError if from_recipient else IntegrationError


def webhook_failure(
    provider: str,
    response: httpx.Response,
    *,
    destination: Destination,
    detail: str,
    code: str | None = None,
    retry_after: float | None = None,
    table: Mapping[int, type[ProviderError]] | None = None,
    gone_statuses: Collection[int] = GONE_STATUSES,
) -> ProviderError:
    """The error for a non-success webhook answer.

    ``gone_statuses`` mean the webhook is deleted or refuses us (see :func:`destination_error`);
    429, 408 and 5xx are retried, preferring a ``retry_after`` read from the body over the
    ``Retry-After`` header; anything else follows ``table`` over the shared status table.
    ``detail`` must already be redacted.
    """
    status = response.status_code
    text = f"HTTP {status}: {detail}".strip()
    if destination.from_recipient:
        text += " (subscriber's webhook)"
    if status in gone_statuses:
        return destination_error(destination.from_recipient)(
            provider, text, status_code=status, provider_code=code
        )
    error = classify_status(provider, response, table=table, message=text, provider_code=code)
    if isinstance(error, RetryableError) and retry_after is not None:
        error.retry_after = retry_after
    return error


def seconds(value: object) -> float | None:
    """A wait in seconds from a JSON value, bounded as a ``Retry-After`` is
    (:func:`~providers.retry_after.bounded_wait`), or ``None``.

    A number too large for a float (JSON ``1e400``) is enormous, hence the bound; a string is
    read only when it spells a finite number (``"inf"`` and ``"nan"`` are words, not waits).
    """
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
        if not math.isfinite(value):
            return None
    return bounded_wait(value)


# -- Destinations chosen by chat id ------------------------------------------------------------


def chat_destination(
    provider: str, message: Message, default: str | None, setting: str
) -> tuple[str, bool]:
    """The recipient's ``chat_id``, else the integration's ``default``; and whether it was the
    recipient's. Raises :class:`IntegrationError` naming ``setting`` when neither is set."""
    if message.to.chat_id:
        return message.to.chat_id, True
    if default:
        return default, False
    raise IntegrationError(
        provider, f"no destination: set the recipient's chat_id or the {setting} setting"
    )


# -- Message text ------------------------------------------------------------------------------


def heading(message: Message) -> str | None:
    """The line shown in bold above the body: the title, else the subject."""
    return message.title or message.subject or None


def compose_text(message: Message, bold: Callable[[str], str]) -> str:
    """``heading`` in the provider's bold markup, a newline, then the body."""
    title = heading(message)
    if title and message.body:
        return f"{bold(title)}\n{message.body}"
    return bold(title) if title else message.body


def passthrough(options: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The ``names`` a workflow step set in ``message.options``, unchanged."""
    return {name: options[name] for name in names if name in options}
