"""A provider's callback at the HTTP boundary: which integration, authentic or not, what it says.

The path names the integration (a random id; it carries no secret): the provider's own signature
authenticates the request, checked by the provider module with the integration's credentials,
decrypted here for that check only. What is not authentic changes nothing. What is, is handed
on as plain JSON (no credential, no raw body) for the worker to apply, so the answer is fast
whatever a burst holds.

An unknown integration is refused exactly like a bad signature (:class:`Refused`, 401): an
answer that told the two apart would let anyone test which ids exist.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import select

from dispatcher.config import Settings
from dispatcher.runtime.guarded_connector import GuardedConnector, http2_transport
from dispatcher.runtime.resources import database, ensure_ready
from dispatcher.runtime.url_guard import AddressPolicy, DestinationGuard, UnsafeDestinationError
from dispatcher.sending.ambiguity import split_settings
from dispatcher.sending.integrations import describe, open_credentials, sealed_column
from models import Integration
from providers.base import Credentials
from providers.callbacks import CallbackRejectedError, CallbackRequest, ParsedCallback
from providers.registry import AnyProvider, UnknownProviderError, default_registry

logger = logging.getLogger(__name__)

#: Seconds for fetching what a signature check needs, or a subscription confirmation.
FETCH_TIMEOUT = 10.0
#: Seconds an integration read for a callback is reused for: a burst of callbacks for one
#: integration reads and decrypts it once (a change of its credentials applies this much later).
TARGET_TTL = 10.0
#: Integrations kept at most.
TARGET_CACHE_SIZE = 1000


class Refused(Exception):  # noqa: N818 - an answer, not a failure of ours
    """Not authentic, or no such integration: answered 401, nothing applied. ``unreadable``
    when it was authentic but could not be read (400)."""

    def __init__(self, reason: str, *, unreadable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreadable = unreadable


class Unavailable(Exception):  # noqa: N818 - an answer: the provider is asked to call again
    """The callback may be authentic but cannot be checked now (credentials this process's keys
    cannot decrypt): answered 503, so the provider retries."""


@dataclass(frozen=True)
class Target:
    """The integration a callback is for, its credentials open for the check."""

    integration_id: uuid.UUID
    organisation_id: uuid.UUID
    provider: str
    credentials: Credentials
    settings: dict[str, Any]


def load_target(integration_id: str) -> Target:
    """The integration of any organisation (the id names it alone), ready to verify with."""
    try:
        key = uuid.UUID(integration_id)
    except ValueError:
        raise Refused("no such integration") from None
    ensure_ready()
    sealed, column_type = sealed_column()
    with database().session() as session:
        row = session.execute(
            select(
                Integration.id, Integration.organisation_id, Integration.provider,
                Integration.settings, sealed,
            ).where(Integration.id == key)
        ).one_or_none()  # fmt: skip
        dialect = session.get_bind().dialect
    if row is None:
        raise Refused("no such integration")
    opened = open_credentials(row.provider, row.sealed, column_type, dialect)
    if opened.unreadable:
        logger.error(
            "provider callback for integration %s: its stored credentials cannot be decrypted "
            "with this process's keys (DISPATCHER_ENCRYPTION_KEYS); answered 503",
            row.id,
        )
        raise Unavailable("credentials unreadable")
    if opened.credentials is None:
        logger.warning("provider callback for integration %s: %s", row.id, opened.invalid)
        raise Refused("integration credentials do not fit its provider")
    return Target(row.id, row.organisation_id, row.provider, opened.credentials, row.settings or {})


class TargetCache:
    """Integrations recently read for callbacks (unknown ids are not kept: they cost a read)."""

    def __init__(self, ttl: float = TARGET_TTL, size: int = TARGET_CACHE_SIZE) -> None:
        self.ttl, self.size = ttl, size
        self._targets: dict[str, tuple[float, Target]] = {}
        self._lock = threading.Lock()

    def cached(self, integration_id: str) -> Target | None:
        """The integration if it was read less than ``ttl`` ago (no I/O: callable on the loop)."""
        with self._lock:
            cached = self._targets.get(integration_id)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        return None

    def get(self, integration_id: str) -> Target:
        if (target := self.cached(integration_id)) is not None:
            return target
        now = time.monotonic()
        target = load_target(integration_id)
        with self._lock:
            if len(self._targets) >= self.size:
                self._targets.clear()
            self._targets[integration_id] = (now, target)
        return target


class CallbackReceiver:
    """Per API process: the provider instances, and a guarded HTTP client per event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.targets = TargetCache()
        self.connector = GuardedConnector(AddressPolicy(settings.url_allowlist))
        self._providers: dict[str, AnyProvider] = {}
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._clients = weakref.WeakKeyDictionary()

    def provider(self, name: str) -> AnyProvider:
        instance = self._providers.get(name)
        if instance is None:
            instance = default_registry.get(name)()
            instance.connector = self.connector
            self._providers[name] = instance
        return instance

    def client(self) -> httpx.AsyncClient:
        """Every connection it opens is checked at the address connected to (the URL guard)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            limits = httpx.Limits(max_connections=10, max_keepalive_connections=10)
            client = httpx.AsyncClient(
                transport=http2_transport(self.connector, limits),
                timeout=httpx.Timeout(FETCH_TIMEOUT, connect=5.0),
                follow_redirects=False,
            )
            self._clients[loop] = client
        return client

    async def parse(self, target: Target, request: CallbackRequest) -> ParsedCallback:
        """The provider's verdict on the request; raises :class:`Refused`."""
        try:
            provider = self.provider(target.provider)
            _, provider_settings = split_settings(target.settings)
            settings = provider.parse_settings(provider_settings)
        except (UnknownProviderError, ValidationError) as exc:
            detail = describe(exc) if isinstance(exc, ValidationError) else str(exc)
            logger.warning("provider callback for integration %s: %s", target.integration_id,
                           detail)  # fmt: skip
            raise Refused("integration settings do not fit its provider") from None
        try:
            return await provider.parse_callback(
                request, target.credentials, settings, self.client()
            )
        except CallbackRejectedError as exc:
            logger.info("provider callback for integration %s refused: %s",
                        target.integration_id, exc.reason)  # fmt: skip
            raise Refused(exc.reason, unreadable=exc.unreadable) from None

    async def confirm_subscription(self, target: Target, url: str) -> None:
        """Amazon SNS's subscription confirmation: its URL fetched through the URL guard."""
        try:
            await DestinationGuard(self.settings.url_allowlist).check(url)
            response = await self.client().get(url)
        except (UnsafeDestinationError, httpx.HTTPError) as exc:
            logger.warning("integration %s: subscription confirmation failed (%s)",
                           target.integration_id, type(exc).__name__)  # fmt: skip
            raise Refused("subscription confirmation failed") from None
        logger.info("integration %s: subscription confirmed (HTTP %d)",
                    target.integration_id, response.status_code)  # fmt: skip


def as_message(target: Target, parsed: ParsedCallback) -> dict[str, Any]:
    """What the broker carries to the worker: the integration and its events, as JSON."""
    return {
        "integration_id": str(target.integration_id),
        "organisation_id": str(target.organisation_id),
        "provider": target.provider,
        "events": [event.model_dump(mode="json") for event in parsed.events],
    }
