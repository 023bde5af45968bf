"""Helpers shared by the chat providers whose credential is an incoming-webhook URL.

Slack, Discord, Teams, Google Chat and Mattermost incoming webhooks carry their secret in the URL
itself, so the URL is a ``SecretStr`` credential, and a subscriber may bring their own URL
(``message.to.webhook_url``). Two rules follow:

* a subscriber's URL must be ``https`` on the provider's own hosts, or the worker would POST
  wherever a subscriber profile points (server-side request forgery);
* no URL, path segment or query value of it may reach an error message.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx
from pydantic import SecretStr

from providers.base import Message
from providers.errors import IntegrationError, RecipientError

#: Shorter URL pieces (``services``, ``api``, ``webhooks``) are not secret and stay readable.
MIN_SECRET_PIECE = 16


def host_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    """``host`` is one of ``allowed_hosts`` or a subdomain of one."""
    host = host.lower().rstrip(".")
    return any(host == allowed or host.endswith(f".{allowed}") for allowed in allowed_hosts)


def webhook_destination(
    provider: str,
    message: Message,
    configured: SecretStr | None,
    allowed_hosts: Iterable[str],
) -> tuple[str, bool]:
    """The URL to post to, and whether it is the subscriber's own rather than the integration's.

    Raises :class:`RecipientError` for a subscriber URL that is not ``https`` on an allowed host,
    :class:`IntegrationError` when neither URL is set.
    """
    raw = message.to.webhook_url
    if not raw:
        if configured is None or not configured.get_secret_value():
            raise IntegrationError(provider, "no webhook URL configured for this integration")
        return configured.get_secret_value(), False
    allowed = tuple(allowed_hosts)
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise RecipientError(provider, "the subscriber's webhook URL is not a URL") from None
    if url.scheme != "https" or not url.host or not host_allowed(url.host, allowed):
        raise RecipientError(
            provider,
            "the subscriber's webhook URL must be https on "
            + (", ".join(allowed) if allowed else "the integration's host"),
        )
    return raw, True


def redact(text: str, *urls: str) -> str:
    """``text`` without any of ``urls``, their long path segments or their query values."""
    pieces: list[str] = []
    for url in urls:
        if not url:
            continue
        pieces.append(url)
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError):
            continue
        pieces += parsed.path.split("/")
        pieces += [value for _, value in parsed.params.multi_items()]
        if parsed.userinfo:
            pieces.append(parsed.userinfo.decode("ascii", "replace"))
    for piece in sorted(set(pieces), key=len, reverse=True):
        if len(piece) >= MIN_SECRET_PIECE:
            text = text.replace(piece, "[redacted]")
    return text
