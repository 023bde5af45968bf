"""The organisation's outbound webhook endpoints: create, list, change, delete (API and CLI).

An endpoint is a URL, the event types it wants (:class:`~models.WebhookEventType`), a signing
secret and an ``enabled`` flag. The URL must be an absolute http(s) URL that the URL guard
accepts now (no private, loopback or link-local address unless the operator's
``DISPATCHER_URL_ALLOWLIST`` allows it); the poster checks it again at every connection. The
secret is sealed with the credential key ring and write-only: given (or generated) at
creation, shown once in that answer, never again. Events are written for an endpoint while it is
enabled and subscribed to their type (:mod:`dispatcher.sending.webhook_events`) and posted by
:mod:`dispatcher.sending.webhook_posting`. Deleting an endpoint deletes its queued events.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dispatcher.config import get_settings
from dispatcher.runtime.resources import database, ensure_ready
from dispatcher.runtime.url_guard import UnsafeDestinationError, check_destination
from models import WebhookEndpoint, WebhookEvent, WebhookEventStatus, WebhookEventType
from models.types import utcnow
from providers.webhook import is_http_url

MAX_URL_LENGTH = 2000
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 200
MAX_ENDPOINTS = 20
#: Generated secrets start so, as Svix's do: a reader of a config file knows what it is.
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
EVENT_TYPES = tuple(kind.value for kind in WebhookEventType)


class EndpointError(ValueError):
    """A bad value for an endpoint's field; ``field`` is its wire name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class EndpointView:
    """An endpoint as shown: never its secret."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    enabled: bool
    description: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EventView:
    """One event queued for an endpoint and how its posting went (no body, no secret)."""

    id: uuid.UUID
    event_id: uuid.UUID
    type: str
    status: str
    attempts: int
    http_status: int | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


def checked_url(url: str) -> str:
    """``url`` if the URL guard accepts it (resolving its host), else :class:`EndpointError`."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise EndpointError("url", f"must be at most {MAX_URL_LENGTH} characters")
    if not is_http_url(url):
        raise EndpointError("url", "must be an absolute http or https URL")
    try:
        check_destination(url, allow=get_settings().url_allowlist)
    except UnsafeDestinationError as exc:
        raise EndpointError("url", f"refused by the URL guard: {exc}") from None
    return url


def checked_event_types(values: Sequence[str]) -> list[str]:
    """The event types, de-duplicated in order; an empty list or an unknown type is refused."""
    if not values:
        raise EndpointError("eventTypes", "name at least one event type")
    unknown = [value for value in values if value not in EVENT_TYPES]
    if unknown:
        raise EndpointError(
            "eventTypes",
            f"unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}",
        )
    return list(dict.fromkeys(values))


def checked_secret(secret: str | None) -> str:
    """The given secret, or a new one when none is given."""
    if secret is None:
        return SECRET_PREFIX + secrets.token_urlsafe(32)
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        raise EndpointError(
            "secret", f"must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters long"
        )
    return secret


def _view(row: WebhookEndpoint) -> EndpointView:
    return EndpointView(
        row.id, row.url, [str(kind) for kind in row.event_types or ()], row.enabled,
        row.description, row.created_at, row.updated_at,
    )  # fmt: skip


def create(
    organisation_id: uuid.UUID,
    *,
    url: str,
    event_types: Sequence[str],
    secret: str | None = None,
    description: str | None = None,
    enabled: bool = True,
) -> tuple[EndpointView, str]:
    """A new endpoint, and its secret (the only time it is shown)."""
    url = checked_url(url)
    kinds = checked_event_types(event_types)
    secret = checked_secret(secret)
    ensure_ready()  # the key ring seals the secret
    with database().transaction() as session:
        count = len(
            session.scalars(
                select(WebhookEndpoint.id)
                .where(WebhookEndpoint.organisation_id == organisation_id)
                .limit(MAX_ENDPOINTS)
            ).all()
        )
        if count >= MAX_ENDPOINTS:
            raise EndpointError("url", f"an organisation has at most {MAX_ENDPOINTS} endpoints")
        row = WebhookEndpoint(
            organisation_id=organisation_id, url=url, event_types=kinds,
            secret={"signing_secret": secret}, enabled=enabled, description=description,
        )  # fmt: skip
        session.add(row)
        session.flush()
        return _view(row), secret


def listed(organisation_id: uuid.UUID) -> list[EndpointView]:
    with database().session() as session:
        rows = session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.organisation_id == organisation_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        ).all()
        return [_view(row) for row in rows]


def found(organisation_id: uuid.UUID, endpoint_id: uuid.UUID) -> EndpointView | None:
    with database().session() as session:
        row = _own(session, organisation_id, endpoint_id)
        return None if row is None else _view(row)


def _own(
    session: Session, organisation_id: uuid.UUID, endpoint_id: uuid.UUID, *, lock: bool = False
) -> WebhookEndpoint | None:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.organisation_id == organisation_id
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def change(
    organisation_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    secret: str | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> EndpointView | None:
    """Change the fields given; None when the organisation has no such endpoint. A new secret
    signs the posts from the next attempt on."""
    new_url = checked_url(url) if url is not None else None
    kinds = checked_event_types(event_types) if event_types is not None else None
    new_secret = checked_secret(secret) if secret is not None else None
    ensure_ready()
    with database().transaction() as session:
        row = _own(session, organisation_id, endpoint_id, lock=True)
        if row is None:
            return None
        if new_url is not None:
            row.url = new_url
        if kinds is not None:
            row.event_types = kinds
        if new_secret is not None:
            row.secret = {"signing_secret": new_secret}
        if description is not None:
            row.description = description
        if enabled is not None:
            row.enabled = enabled
        row.updated_at = utcnow()
        session.flush()
        return _view(row)


def remove(organisation_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
    """Delete the endpoint and its events; False when the organisation has no such endpoint."""
    with database().transaction() as session:
        row = _own(session, organisation_id, endpoint_id, lock=True)
        if row is None:
            return False
        session.execute(delete(WebhookEvent).where(WebhookEvent.endpoint_id == endpoint_id))
        session.delete(row)
        return True


def recent_events(
    organisation_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    limit: int = 50,
    status: WebhookEventStatus | None = None,
) -> list[EventView] | None:
    """The endpoint's latest events, newest first; None when there is no such endpoint."""
    with database().session() as session:
        if _own(session, organisation_id, endpoint_id) is None:
            return None
        query = select(WebhookEvent).where(
            WebhookEvent.organisation_id == organisation_id,
            WebhookEvent.endpoint_id == endpoint_id,
        )
        if status is not None:
            query = query.where(WebhookEvent.status == status)
        rows = session.scalars(
            query.order_by(WebhookEvent.created_at.desc(), WebhookEvent.id.desc()).limit(limit)
        ).all()
        return [
            EventView(
                row.id,
                row.event_id,
                row.type.value,
                row.status.value,
                row.attempts,
                row.http_status,
                row.last_error,
                row.created_at,
                row.sent_at,
            )
            for row in rows
        ]
