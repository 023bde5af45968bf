"""Loading encryption keys into the credential key ring at start-up."""

from __future__ import annotations

import os

from dispatcher.config import Settings
from dispatcher.errors import ConfigurationError
from models import KeyRingError, credential_keys, generate_key


def load_keys(settings: Settings) -> list[str]:
    """The configured keys; in embedded mode a local key file is created when none is set."""
    if settings.encryption_keys:
        return [key.get_secret_value() for key in settings.encryption_keys]
    if not settings.is_embedded:
        raise ConfigurationError(
            "DISPATCHER_ENCRYPTION_KEYS is required when the database is not the embedded SQLite "
            "file: set it to one or more comma-separated keys from `dispatcher keys generate`"
        )
    key_file = settings.key_file
    if not key_file.exists():
        settings.ensure_data_dir()
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(generate_key() + "\n")
    return [line.strip() for line in key_file.read_text().splitlines() if line.strip()]


def configure_key_ring(settings: Settings) -> None:
    try:
        credential_keys.configure(load_keys(settings))
    except KeyRingError as exc:
        raise ConfigurationError(f"DISPATCHER_ENCRYPTION_KEYS: {exc}") from None
