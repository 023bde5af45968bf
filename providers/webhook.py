"""Generic signed webhook: https://docs.svix.com/receiving/verifying-payloads/how-manual

Posts one JSON document per message to the recipient's ``webhook_url`` (or the integration's
``url``; either must be an http(s) URL)::

    {"id": <delivery id>, "timestamp": <unix seconds>, "channel", "subject", "title", "body",
     "html", "data", "to": {"subscriber_id", ...}}

signed the way Stripe and Svix sign theirs: ``X-Dispatcher-Timestamp`` carries the unix time and
``X-Dispatcher-Signature`` carries ``v1=<hex HMAC-SHA256 of "{timestamp}.{raw body}">`` keyed with
the integration's signing secret. Receivers check it with :func:`verify_signature` (a pure
function they may copy). ``Idempotency-Key`` names the delivery, so a retried post can be dropped.

A 2xx answer is sent (the message id is the answer's JSON ``"id"`` when it has one); 410 Gone means
the receiver retired the endpoint (a recipient error); 401/403 are integration errors; 408, 429
and 5xx are retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import httpx
from pydantic import SecretStr, field_validator

from providers.base import ChannelType, Credentials, Message, Settings
from providers.errors import IntegrationError, RecipientError
from providers.http import json_body
from providers.http_provider import HttpProvider, HttpRequest

TIMESTAMP_HEADER = "X-Dispatcher-Timestamp"
SIGNATURE_HEADER = "X-Dispatcher-Signature"
SIGNATURE_VERSION = "v1"

STATUS_TABLE = MappingProxyType({410: RecipientError, 401: IntegrationError, 403: IntegrationError})


class WebhookCredentials(Credentials):
    signing_secret: SecretStr


class WebhookSettings(Settings):
    #: Where to post when the recipient has no ``webhook_url`` of its own.
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _is_http_url(cls, value: str | None) -> str | None:
        if value is not None and not is_http_url(value):
            raise ValueError("url must be an absolute http or https URL")
        return value


def is_http_url(value: str) -> bool:
    """Whether ``value`` is an absolute ``http``/``https`` URL with a host."""
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        return False
    return url.scheme in {"http", "https"} and bool(url.host)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Dispatcher-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(
        secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature_header: str,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> bool:
    """Whether a received webhook is authentic and fresh.

    ``timestamp`` is the ``X-Dispatcher-Timestamp`` header, ``body`` the raw request body (bytes,
    before any JSON parsing), ``signature_header`` the ``X-Dispatcher-Signature`` header; it may
    hold several space- or comma-separated ``v1=<hex>`` values while a secret is being rotated.
    Timestamps further than ``tolerance_seconds`` from ``now`` are rejected, against replays.
    Standard library only, so receivers may copy it.
    """
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        return False
    expected = sign(secret, str(sent_at), body).encode("ascii")
    candidates = signature_header.replace(",", " ").split()
    matched = False
    for candidate in candidates:
        # Compare every candidate, so timing does not tell which one matched.
        matched |= hmac.compare_digest(candidate.strip().encode("utf-8", "replace"), expected)
    return matched


class WebhookProvider(HttpProvider[WebhookCredentials, WebhookSettings]):
    name = "webhook"
    display_name = "Webhook (signed JSON POST)"
    channel = ChannelType.WEBHOOK
    credentials_model = WebhookCredentials
    settings_model = WebhookSettings
    supports_idempotency_key = True
    #: ``html`` travels in the posted document beside ``body``.
    supports_html = True
    status_errors = STATUS_TABLE

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def build_request(
        self, message: Message, credentials: WebhookCredentials, settings: WebhookSettings
    ) -> HttpRequest:
        url = self._destination(message, settings)
        timestamp = str(int(self._clock()))
        raw_body = json.dumps(
            payload(message, timestamp=int(timestamp)), separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        return HttpRequest(
            "POST",
            url,
            content=raw_body,
            headers={
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(
                    credentials.signing_secret.get_secret_value(), timestamp, raw_body
                ),
                "Idempotency-Key": message.idempotency_key,
            },
        )

    def message_id(self, response: httpx.Response) -> str | None:
        message_id = json_body(response).get("id")
        return str(message_id) if isinstance(message_id, str | int) else None

    def _destination(self, message: Message, settings: WebhookSettings) -> str:
        if message.to.webhook_url:
            if not is_http_url(message.to.webhook_url):
                raise RecipientError(self.name, "the recipient's webhook URL is not an http(s) URL")
            return message.to.webhook_url
        if settings.url:
            return settings.url
        raise IntegrationError(self.name, "no webhook URL: set settings.url or the recipient's")


def payload(message: Message, *, timestamp: int) -> dict[str, Any]:
    """The JSON document posted for ``message``."""
    # The recipient's own webhook URL stays out: it may carry a token.
    recipient = message.to.model_dump(mode="json", exclude_defaults=True, exclude={"webhook_url"})
    return {
        "id": message.delivery_id,
        "timestamp": timestamp,
        "channel": message.channel.value,
        "subject": message.subject,
        "title": message.title,
        "body": message.body,
        "html": message.html,
        "data": message.data,
        "to": {"subscriber_id": message.to.subscriber_id, **recipient},
    }
