"""An integration made ready to call: decrypted into its provider's model, parsed, guarded.

The send path, the circuit probe and ``dispatcher integrations test`` all go through
:func:`prepare`, so the three agree on what an integration may do: a destination the worker
would refuse is refused before any request, wherever the call comes from.

Credentials exist in plain text only between decryption and validation inside
:func:`open_credentials`; from there on they are the provider's credentials model, whose
secrets are ``SecretStr`` (no repr, log line or error shows them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import Dialect, Text, select, type_coerce
from sqlalchemy.orm import Session

from dispatcher.observability.redaction import default_redactor
from dispatcher.runtime.http import SendingRuntime
from dispatcher.runtime.url_guard import DestinationGuard, UnsafeDestinationError
from dispatcher.sending.ambiguity import DeliverySettings, split_settings
from models import Integration, IntegrationStatus
from models.crypto import KeyRingError
from models.types import EncryptedJSON
from providers.base import Credentials, Settings, secret_values
from providers.errors import IntegrationError
from providers.registry import AnyProvider, UnknownProviderError, default_registry

#: Integration settings that name a destination URL.
GUARDED_SETTINGS = ("url", "base_url")

#: Why credentials that cannot be decrypted are not used.
UNREADABLE = "stored credentials cannot be decrypted with this process's keys"


@dataclass(frozen=True)
class Candidate:
    """An integration that may send a delivery, as read from its row."""

    integration_id: uuid.UUID
    provider: str
    #: The provider's credentials model; None when they could not be read or do not fit.
    credentials: Credentials | None
    settings: dict[str, Any]
    status: IntegrationStatus
    #: The stored credentials could not be decrypted with this worker's keys: not tried, and
    #: the delivery waits for it as for an open circuit (a key problem is fixed by an operator,
    #: not by failing every delivery of the integration).
    unreadable: bool = False
    #: Why the credentials do not fit the provider (field names, never values), or None.
    invalid: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A provider with its parsed credentials and settings, and the client to call it with."""

    provider: AnyProvider
    credentials: Credentials
    settings: Settings
    client: httpx.AsyncClient
    #: The integration's own delivery settings (``on_ambiguous``), which the provider never sees.
    delivery: DeliverySettings = field(default_factory=DeliverySettings)


def describe(error: ValidationError) -> str:
    """The fields a validation error names and what is wrong with each, never the input."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '(object)'}: {item['msg']}"
        for item in error.errors(include_input=False, include_url=False)
    )


@dataclass(frozen=True)
class Opened:
    """Stored credentials after decryption: the provider's model, or why there is none."""

    credentials: Credentials | None = None
    unreadable: bool = False
    invalid: str | None = None


def open_credentials(
    provider: str, sealed: str | None, column_type: EncryptedJSON, dialect: Dialect
) -> Opened:
    """Decrypt and validate one integration's stored credentials: the plain dict lives only in
    this function."""
    try:
        plain = column_type.process_result_value(sealed, dialect) or {}
    except KeyRingError:
        return Opened(unreadable=True)
    try:
        return Opened(default_registry.get(provider).parse_credentials(plain))
    except UnknownProviderError as exc:
        return Opened(invalid=str(exc))
    except ValidationError as exc:
        return Opened(
            invalid=f"stored credentials do not fit provider {provider!r}: {describe(exc)}"
        )


def candidate_from_row(row: Any, column_type: EncryptedJSON, dialect: Dialect) -> Candidate:
    """A candidate from a row with ``id``, ``provider``, ``settings``, ``status`` and ``sealed``
    (the credentials column read as stored, see :func:`sealed_column`)."""
    opened = open_credentials(row.provider, row.sealed, column_type, dialect)
    return Candidate(
        row.id, row.provider, opened.credentials, row.settings or {}, row.status,
        opened.unreadable, opened.invalid,
    )  # fmt: skip


def sealed_column() -> tuple[Any, EncryptedJSON]:
    """The credentials column selected as stored (sealed), and the type that opens it.

    Decrypting row by row rather than by the column type in the query means one row sealed
    with a key this worker lacks does not fail a whole batch, which spans organisations.
    """
    column_type = Integration.__table__.c.credentials.type
    assert isinstance(column_type, EncryptedJSON)
    return type_coerce(Integration.credentials, Text).label("sealed"), column_type


def load_candidate(
    session: Session, integration_id: uuid.UUID, organisation_id: uuid.UUID | None = None
) -> Candidate | None:
    """One integration as a candidate, scoped to ``organisation_id`` when given; None if absent."""
    sealed, column_type = sealed_column()
    query = select(
        Integration.id, Integration.provider, Integration.settings, Integration.status, sealed
    ).where(Integration.id == integration_id)
    if organisation_id is not None:
        query = query.where(Integration.organisation_id == organisation_id)
    row = session.execute(query).one_or_none()
    if row is None:
        return None
    return candidate_from_row(row, column_type, session.get_bind().dialect)


async def prepare(
    candidate: Candidate, guard: DestinationGuard, runtime: SendingRuntime
) -> Prepared:
    """The integration ready to call, or :class:`IntegrationError` saying why it is not.

    Refused: credentials that cannot be read or do not fit, settings that do not fit, and a
    tenant-supplied destination in the settings that ``guard`` refuses (checked before any
    request is made).
    """
    name = candidate.provider
    if candidate.unreadable:
        raise IntegrationError(name, UNREADABLE)
    if candidate.invalid is not None or candidate.credentials is None:
        raise IntegrationError(name, candidate.invalid or "stored credentials are missing")
    try:
        provider = runtime.provider(name)
    except UnknownProviderError as exc:
        raise IntegrationError(name, str(exc)) from None
    # An API may echo a credential in its error text: from now on every log line hides them.
    default_redactor.add(*secret_values(candidate.credentials))
    try:
        delivery, provider_settings = split_settings(candidate.settings)
        settings = provider.parse_settings(provider_settings)
    except ValidationError as exc:
        reason = f"stored settings do not fit provider {name!r}: {describe(exc)}"
        raise IntegrationError(name, reason) from None
    for key in GUARDED_SETTINGS:
        url = candidate.settings.get(key)
        if isinstance(url, str) and url:
            try:
                await guard.check(url)
            except UnsafeDestinationError as exc:
                raise IntegrationError(name, f"settings.{key} refused: {exc}") from None
    client = runtime.client(http2=type(provider).requires_http2)
    return Prepared(provider, candidate.credentials, settings, client, delivery)
