"""Encryption keys: loading them into the credential key ring, and rotating stored credentials."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Text, func, inspect, select, type_coerce, update

from dispatcher.config import Settings
from dispatcher.errors import ConfigurationError
from dispatcher.runtime.db import Database, build_engine
from models import Integration, KeyRingError, WebhookEndpoint, credential_keys, generate_key
from models.types import utcnow

#: Called after each committed batch with (rows examined so far, rows counted at the start).
RotationProgress = Callable[[int, int], None]


def load_keys(settings: Settings) -> list[str]:
    """The configured keys; in embedded mode the key file beside the SQLite database.

    The key file is generated only for a database that holds no credentials yet: a new key for a
    database whose credentials another key sealed would decrypt none of them, and every process
    opening that database would silently disagree.
    """
    if settings.encryption_keys:
        return [key.get_secret_value() for key in settings.encryption_keys]
    if not settings.is_embedded:
        raise ConfigurationError(
            "DISPATCHER_ENCRYPTION_KEYS is required when the database is not the embedded SQLite "
            "file: set it to one or more comma-separated keys from `dispatcher keys generate`"
        )
    key_file = settings.key_file
    if not key_file.exists():
        if _holds_credentials(settings):
            raise ConfigurationError(
                f"the key file {key_file} is missing, but the database "
                f"{settings.sqlite_file} holds credentials sealed with a key: restore that file "
                "(or set DISPATCHER_ENCRYPTION_KEYS to the key); a new key would decrypt none "
                "of them, so none is generated"
            )
        _create_key_file(key_file)
    return [line.strip() for line in key_file.read_text().splitlines() if line.strip()]


def _holds_credentials(settings: Settings) -> bool:
    database_file = settings.sqlite_file
    if database_file is None or not database_file.exists():
        return False
    engine = build_engine(settings.resolved_database_url)
    try:
        if not inspect(engine).has_table(Integration.__tablename__):
            return False
        with engine.connect() as connection:
            stored = select(Integration.id).where(Integration.credentials.is_not(None)).limit(1)
            return connection.execute(stored).first() is not None
    finally:
        engine.dispose()


def _create_key_file(key_file: Path) -> None:
    """Write a new key, atomically: a process starting at the same moment reads the same one."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    draft = key_file.with_name(f".{key_file.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(generate_key() + "\n")
    try:
        os.link(draft, key_file)
    except FileExistsError:
        pass  # another process made it first: theirs is the key
    finally:
        draft.unlink()


def configure_key_ring(settings: Settings) -> None:
    try:
        credential_keys.configure(load_keys(settings))
    except KeyRingError as exc:
        raise ConfigurationError(f"DISPATCHER_ENCRYPTION_KEYS: {exc}") from None


def rotate_credentials(
    database: Database, batch_size: int = 500, progress: RotationProgress | None = None
) -> int:
    """Re-encrypt every stored integration credential (and every outbound webhook endpoint's
    signing secret) with the first key of the ring.

    Rows are walked in id order, one short transaction per batch, so workers keep reading and
    writing meanwhile and an interrupted run keeps what it committed; running it again finishes
    the job (every run re-encrypts every row, which is harmless). A row is written back only if
    its token is still the one read: a worker that changed the credentials in between wrote them
    with its own ring, and that value wins. Returns how many credentials were re-encrypted.

    A token that no configured key decrypts stops the run with :class:`KeyRingError`, naming
    the integration: dropping a key while such rows exist would lose them.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    # Typed as Text, the column is read and compared as the stored token, not decrypted.
    token = type_coerce(Integration.credentials, Text)
    stored = Integration.credentials.is_not(None)
    with database.engine.connect() as connection:
        total = connection.execute(select(func.count()).where(stored)).scalar_one()

    rotated = examined = 0
    last_id = None
    while True:
        query = select(Integration.id, token).where(stored).order_by(Integration.id)
        if last_id is not None:
            query = query.where(Integration.id > last_id)
        with database.engine.begin() as connection:
            rows = connection.execute(query.limit(batch_size)).all()
            if not rows:
                break
            now = utcnow()
            for integration_id, old_token in rows:
                try:
                    new_token = credential_keys.rotate(old_token)
                except KeyRingError as exc:
                    raise KeyRingError(f"integration {integration_id}: {exc}") from None
                written = connection.execute(
                    update(Integration)
                    .where(Integration.id == integration_id, token == old_token)
                    .values(
                        credentials=type_coerce(new_token, Text),
                        credentials_rotated_at=now,
                        # Re-encryption changes no content; keep updated_at as it was.
                        updated_at=Integration.updated_at,
                    )
                )
                rotated += written.rowcount
        examined += len(rows)
        last_id = rows[-1].id
        if progress is not None:
            progress(examined, total)
    return rotated + _rotate_endpoint_secrets(database, batch_size)


def _rotate_endpoint_secrets(database: Database, batch_size: int) -> int:
    """The outbound webhook endpoints' signing secrets, re-encrypted as the credentials are
    (by id, one transaction per batch, written back only if unchanged meanwhile)."""
    token = type_coerce(WebhookEndpoint.secret, Text)
    rotated = 0
    last_id = None
    while True:
        query = select(WebhookEndpoint.id, token).order_by(WebhookEndpoint.id)
        if last_id is not None:
            query = query.where(WebhookEndpoint.id > last_id)
        with database.engine.begin() as connection:
            rows = connection.execute(query.limit(batch_size)).all()
            if not rows:
                return rotated
            for endpoint_id, old_token in rows:
                try:
                    new_token = credential_keys.rotate(old_token)
                except KeyRingError as exc:
                    raise KeyRingError(f"webhook endpoint {endpoint_id}: {exc}") from None
                written = connection.execute(
                    update(WebhookEndpoint)
                    .where(WebhookEndpoint.id == endpoint_id, token == old_token)
                    .values(
                        secret=type_coerce(new_token, Text),
                        updated_at=WebhookEndpoint.updated_at,
                    )
                )
                rotated += written.rowcount
        last_id = rows[-1].id
