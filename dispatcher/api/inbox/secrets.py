"""Each organisation's inbox settings: the public application identifier, the secret the
application signs subscriber ids with, and the origins allowed to call the inbox.

``rotate`` makes a new secret; the previous one stays valid for the overlap given (pages opened
with a hash of the old secret keep working until then). Secrets are stored encrypted
(:class:`models.InboxSettings`) and only :func:`rotate` ever shows one, once.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.runtime.resources import database, ensure_ready
from models import InboxSettings, Organisation
from models.types import utcnow

APPLICATION_PREFIX = "app_"
SECRET_BYTES = 32
DEFAULT_OVERLAP = timedelta(minutes=60)


@dataclass(frozen=True)
class InboxKeys:
    """What verifies a subscriber: the secrets valid now (current first). ``repr`` hides them."""

    organisation_id: uuid.UUID
    application_identifier: str
    secrets: tuple[bytes, ...] = field(repr=False)
    cors_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rotated:
    application_identifier: str
    secret: str = field(repr=False)
    previous_valid_until: datetime | None


def _valid(row: InboxSettings, now: datetime) -> tuple[bytes, ...]:
    stored = row.secrets
    found = [stored["current"].encode()]
    until = stored.get("previous_until")
    if stored.get("previous") and until and datetime.fromisoformat(until) > now:
        found.append(stored["previous"].encode())
    return tuple(found)


def _keys(row: InboxSettings) -> InboxKeys:
    return InboxKeys(
        row.organisation_id,
        row.application_identifier,
        _valid(row, utcnow()),
        tuple(str(origin) for origin in row.cors_origins),
    )


def _row(session: Session, organisation_id: uuid.UUID) -> InboxSettings | None:
    return session.scalars(
        select(InboxSettings).where(InboxSettings.organisation_id == organisation_id)
    ).one_or_none()


def rotate(organisation_id: uuid.UUID, overlap: timedelta = DEFAULT_OVERLAP) -> Rotated:
    """A new secret for the organisation (its first one creates the application identifier)."""
    if overlap < timedelta(0):
        raise ValueError("overlap: must not be negative")
    ensure_ready()
    new = secrets.token_hex(SECRET_BYTES)
    now = utcnow()
    with database().transaction() as session:
        if session.get(Organisation, organisation_id) is None:
            raise LookupError(f"org: no organisation with id {organisation_id}")
        row = _row(session, organisation_id)
        if row is None:
            row = InboxSettings(
                organisation_id=organisation_id,
                application_identifier=APPLICATION_PREFIX + secrets.token_urlsafe(18),
                secrets={"current": new, "previous": None, "previous_until": None},
                cors_origins=[],
            )
            session.add(row)
            return Rotated(row.application_identifier, new, None)
        until = now + overlap
        row.secrets = {
            "current": new,
            "previous": row.secrets["current"] if overlap else None,
            "previous_until": until.isoformat() if overlap else None,
        }
        return Rotated(row.application_identifier, new, until if overlap else None)


def set_origins(organisation_id: uuid.UUID, origins: list[str]) -> InboxKeys:
    """Replace the organisation's allowed origins (``scheme://host[:port]``)."""
    cleaned = []
    for given in origins:
        origin = given.strip().rstrip("/")
        scheme, _, rest = origin.partition("://")
        if scheme not in ("http", "https") or not rest or "/" in rest:
            raise ValueError(f"origins: {origin!r} is not scheme://host[:port]")
        cleaned.append(origin)
    ensure_ready()
    with database().transaction() as session:
        row = _row(session, organisation_id)
        if row is None:
            raise LookupError(
                "org: the organisation has no inbox secret yet (dispatcher inbox-secret rotate)"
            )
        row.cors_origins = cleaned
        return _keys(row)


def keys_for_application(application_identifier: str) -> InboxKeys | None:
    ensure_ready()
    with database().session() as session:
        row = session.scalars(
            select(InboxSettings).where(
                InboxSettings.application_identifier == application_identifier
            )
        ).one_or_none()
        return _keys(row) if row is not None else None


def keys_for_organisation(organisation_id: uuid.UUID) -> InboxKeys | None:
    ensure_ready()
    with database().session() as session:
        row = _row(session, organisation_id)
        return _keys(row) if row is not None else None


def origin_allowed_anywhere(origin: str) -> bool:
    """Whether some organisation allows ``origin`` (a preflight names no organisation)."""
    with database().session() as session:
        origins = session.scalars(select(InboxSettings.cors_origins)).all()
    return any(origin in listed for listed in origins)
