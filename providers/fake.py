"""Fake providers for tests and demos, registrable like any real one.

* ``fake``: records every message in memory and answers from a script of outcomes.
* ``fake_http``: posts each message as JSON to a URL (a local fake server), with a bearer key,
  and classifies the answer like a real HTTP provider. End-to-end tests and ``make run`` use it
  with a worker in another process.

Both read delivery callbacks the way a real provider sends them (:func:`parse_fake_callback`):
a JSON list of ``{id, messageId, status, timestamp, recipient, reason, url}``, signed with
HMAC-SHA256 of the raw body under the ``webhook_secret`` credential, hex, in the
``X-Fake-Signature`` header, and dated by ``X-Fake-Timestamp`` (Unix seconds, also signed:
``"<timestamp>.<body>"``), refused outside :data:`CALLBACK_TOLERANCE_SECONDS`. Statuses:
``delivered``, ``opened``, ``clicked``, ``bounced`` (hard: suppressed), ``soft_bounced``,
``complained`` (suppressed), ``undelivered``, ``invalid_number`` (undelivered, suppressed);
any other status (``processed``, ``queued``) is dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import deque
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from providers.base import (
    ChannelType,
    CheckResult,
    Credentials,
    Message,
    Provider,
    RateLimitSettings,
    SendResult,
    Settings,
)
from providers.callbacks import (
    BounceKind,
    CallbackRejectedError,
    CallbackRequest,
    DeliveryEvent,
    DeliveryEventKind,
    ParsedCallback,
)
from providers.errors import AmbiguousError, IntegrationError, RecipientError, RetryableError
from providers.http import classify_status, json_body, send_request
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest

Outcome = Literal["sent", "retryable", "ambiguous", "rate_limited", "integration", "recipient"]

ALL_CHANNELS = frozenset(ChannelType)


class FakeCredentials(Credentials):
    api_key: SecretStr
    #: Signs delivery callbacks; without it every callback is refused.
    webhook_secret: SecretStr | None = None


#: Seconds a callback's timestamp may be from the receiver's clock.
CALLBACK_TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "x-fake-signature"
TIMESTAMP_HEADER = "x-fake-timestamp"

#: Fake status -> (kind, bounce, suppress).
FAKE_STATUSES: MappingProxyType[str, tuple[DeliveryEventKind, BounceKind | None, bool]] = (
    MappingProxyType(
        {
            "delivered": (DeliveryEventKind.DELIVERED, None, False),
            "opened": (DeliveryEventKind.OPENED, None, False),
            "clicked": (DeliveryEventKind.CLICKED, None, False),
            "bounced": (DeliveryEventKind.BOUNCED, BounceKind.HARD, True),
            "soft_bounced": (DeliveryEventKind.BOUNCED, BounceKind.SOFT, False),
            "complained": (DeliveryEventKind.COMPLAINED, None, True),
            "undelivered": (DeliveryEventKind.UNDELIVERED, None, False),
            "invalid_number": (DeliveryEventKind.UNDELIVERED, None, True),
        }
    )
)


def sign_fake_callback(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers a fake provider sends with a callback body (tests, the fake server, bench)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Fake-Signature": digest,
            "X-Fake-Timestamp": stamp}  # fmt: skip


def parse_fake_callback(
    name: str, request: CallbackRequest, credentials: FakeCredentials, now: float | None = None
) -> ParsedCallback:
    """Verify and normalize a fake provider's callback (see the module docstring)."""
    if credentials.webhook_secret is None:
        raise CallbackRejectedError(name, "no webhook secret configured")
    signature, stamp = request.header(SIGNATURE_HEADER), request.header(TIMESTAMP_HEADER)
    if not signature or not stamp or not stamp.isdigit():
        raise CallbackRejectedError(name, "signature or timestamp header missing")
    if abs((time.time() if now is None else now) - int(stamp)) > CALLBACK_TOLERANCE_SECONDS:
        raise CallbackRejectedError(name, "timestamp outside the tolerance")
    secret = credentials.webhook_secret.get_secret_value().encode()
    expected = hmac.new(secret, stamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise CallbackRejectedError(name, "signature does not match")
    try:
        items = json.loads(request.body)
        if not isinstance(items, list):
            raise TypeError("not a list")
        events = tuple(_fake_event(item) for item in items if item.get("status") in FAKE_STATUSES)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise CallbackRejectedError(
            name, f"unreadable body ({type(exc).__name__})", unreadable=True
        ) from None
    return ParsedCallback(events=events)


def _fake_event(item: dict[str, Any]) -> DeliveryEvent:
    kind, bounce, suppress = FAKE_STATUSES[item["status"]]
    return DeliveryEvent(
        kind=kind,
        provider_message_id=str(item["messageId"]),
        occurred_at=datetime.fromtimestamp(float(item["timestamp"]), UTC),
        event_id=str(item["id"]),
        recipient=item.get("recipient"),
        bounce=bounce,
        suppress=suppress,
        reason=item.get("reason"),
        url=item.get("url"),
    )


class FakeSettings(Settings):
    #: Outcomes to answer with, in order, before answering ``sent`` for ever.
    script: tuple[Outcome, ...] = ()
    #: The ``Retry-After`` (seconds) of a ``rate_limited`` answer.
    retry_after: float = 30.0


class FakeProvider(Provider[FakeCredentials, FakeSettings]):
    """Records sends in ``self.sent``; each instance keeps its own record."""

    name = "fake"
    display_name = "Fake (in memory)"
    channel = ChannelType.EMAIL
    credentials_model = FakeCredentials
    settings_model = FakeSettings
    returns_message_id = True
    supports_html = True

    supports_callbacks = True

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self._scripts: dict[tuple[Outcome, ...], deque[Outcome]] = {}

    @classmethod
    def supported_channels(cls) -> frozenset[ChannelType]:
        return ALL_CHANNELS

    async def send(
        self,
        message: Message,
        credentials: FakeCredentials,
        settings: FakeSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        pending = self._scripts.setdefault(settings.script, deque(settings.script))
        outcome: Outcome = pending.popleft() if pending else "sent"
        if outcome == "retryable":
            raise RetryableError(self.name, "scripted transient failure", status_code=503)
        if outcome == "rate_limited":
            raise RetryableError(
                self.name, "scripted rate limit", status_code=429, retry_after=settings.retry_after
            )
        if outcome == "integration":
            raise IntegrationError(self.name, "scripted bad credentials", status_code=401)
        if outcome == "recipient":
            raise RecipientError(self.name, "scripted invalid recipient", status_code=400)
        if outcome == "ambiguous":
            # Sent, and then the answer was lost.
            self.sent.append(message)
            raise AmbiguousError(self.name, "scripted lost answer")
        self.sent.append(message)
        return SendResult(provider_message_id=f"fake-{len(self.sent)}", status_code=200)

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: FakeCredentials,
        settings: FakeSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        return parse_fake_callback(self.name, request, credentials)


class FakeHttpSettings(RateLimitSettings):
    url: str


class FakeHttpProvider(HttpProvider[FakeCredentials, FakeHttpSettings]):
    """Posts ``{"delivery_id", "channel", "to", "subject", "body", ...}`` to ``settings.url``.

    The server answers ``{"id": ...}`` on success; ``{"error": "invalid_recipient"}`` with 400 is
    a recipient error; 401/403 integration errors; 429 and 5xx retryable.
    """

    name = "fake_http"
    display_name = "Fake (HTTP)"
    channel = ChannelType.EMAIL
    credentials_model = FakeCredentials
    settings_model = FakeHttpSettings
    returns_message_id = True
    supports_idempotency_key = True
    supports_html = True
    supports_callbacks = True
    error_codes = MappingProxyType({"invalid_recipient": RecipientError})

    @classmethod
    def supported_channels(cls) -> frozenset[ChannelType]:
        return ALL_CHANNELS

    def build_request(
        self, message: Message, credentials: FakeCredentials, settings: FakeHttpSettings
    ) -> HttpRequest:
        return HttpRequest(
            "POST",
            settings.url,
            headers={
                "Authorization": f"Bearer {credentials.api_key.get_secret_value()}",
                "Idempotency-Key": message.idempotency_key,
            },
            json={
                "delivery_id": message.delivery_id,
                "channel": message.channel.value,
                "to": message.to.model_dump(mode="json", exclude_defaults=True),
                "subject": message.subject,
                "body": message.body,
                "title": message.title,
                "data": message.data,
            },
        )

    def message_id(self, response: httpx.Response) -> str | None:
        message_id = json_body(response).get("id")
        return str(message_id) if message_id is not None else None

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        if response.status_code == 400 and json_body(response).get("error") == "invalid_recipient":
            return ErrorCode("invalid_recipient", "invalid recipient")
        return None

    async def check(
        self,
        credentials: FakeCredentials,
        settings: FakeHttpSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        response = await send_request(
            self.name,
            client,
            "GET",
            settings.url,
            headers={"Authorization": f"Bearer {credentials.api_key.get_secret_value()}"},
        )
        if response.is_success:
            return CheckResult(ok=True, detail=f"HTTP {response.status_code}")
        return CheckResult(ok=False, detail=str(classify_status(self.name, response)))

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: FakeCredentials,
        settings: FakeHttpSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        return parse_fake_callback(self.name, request, credentials)
