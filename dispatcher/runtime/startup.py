"""What a worker, beat and the HTTP API check before they start, and refuse to start without.

A process that cannot decrypt credentials would report ready, answer pings and leave every
delivery waiting as "cannot be decrypted". So at start-up the key ring must load (a missing or
malformed key is a :class:`~dispatcher.errors.ConfigurationError`) and, when credentials are
stored, open at least one of the most recently written ones: a well-formed but wrong key ring is
refused too, naming the fix. A database that cannot be reached is not a reason to refuse (the
process waits for it like any other outage); it is logged and the check is skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Text, select, type_coerce
from sqlalchemy.exc import SQLAlchemyError

from dispatcher.errors import ConfigurationError
from dispatcher.runtime.db import Database
from dispatcher.runtime.resources import database, ensure_ready
from models import Integration, KeyRingError, credential_keys

logger = logging.getLogger(__name__)

#: Stored credentials tried at start-up: the most recently written ones, newest first.
START_UP_SAMPLE = 20


@dataclass(frozen=True)
class KeyCheck:
    checked: int
    undecryptable: int

    @property
    def opens_none(self) -> bool:
        return self.checked > 0 and self.undecryptable == self.checked


def check_stored_credentials(db: Database, limit: int | None = START_UP_SAMPLE) -> KeyCheck:
    """Try to decrypt stored credentials (the newest ``limit``, or all of them) with the ring."""
    # Typed as Text, the column is read as the stored token, not decrypted by the column type.
    token = type_coerce(Integration.credentials, Text)
    query = (
        select(token)
        .where(Integration.credentials.is_not(None))
        .order_by(Integration.updated_at.desc())
    )
    with db.engine.connect() as connection:
        tokens = connection.execute(query if limit is None else query.limit(limit)).scalars().all()
    undecryptable = 0
    for stored in tokens:
        try:
            credential_keys.decrypt(stored)
        except KeyRingError:
            undecryptable += 1
    return KeyCheck(checked=len(tokens), undecryptable=undecryptable)


def require_working_keys(db: Database) -> KeyCheck | None:
    """Raise :class:`ConfigurationError` when the ring opens none of the stored credentials;
    ``None`` when the database could not be asked."""
    try:
        result = check_stored_credentials(db)
    except SQLAlchemyError as exc:
        logger.warning(
            "start-up: stored credentials not checked, the database is unavailable (%s)",
            type(exc).__name__,
        )
        return None
    if result.opens_none:
        raise ConfigurationError(
            f"DISPATCHER_ENCRYPTION_KEYS opens none of the {result.checked} most recently stored "
            "integration credentials: these keys are not the ones the credentials were written "
            "with. Set DISPATCHER_ENCRYPTION_KEYS to the key ring in use (the first key encrypts, "
            "all decrypt; add a new key in front and run `dispatcher keys rotate` to change keys)"
        )
    if result.undecryptable:
        logger.warning(
            "start-up: %d of the %d most recent stored credentials cannot be decrypted with "
            "these keys; their integrations' deliveries will wait",
            result.undecryptable,
            result.checked,
        )
    return result


def refuse_to_start_unless_ready(process: str) -> None:
    """The start-up check of a worker, beat or the API: on a configuration error, exit
    non-zero with the message (raised as :class:`SystemExit`, which Celery's signal dispatch
    does not swallow, unlike any :class:`Exception` raised by a signal receiver)."""
    try:
        ensure_ready()
        require_working_keys(database())
    except ConfigurationError as exc:
        logger.critical("%s refuses to start: %s", process, exc)
        raise SystemExit(f"{process} refuses to start: {exc}") from None
