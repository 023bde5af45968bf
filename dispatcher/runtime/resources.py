"""Process-wide resources built from the settings: the database and the credential key ring.

Producers, workers and the CLI call :func:`ensure_ready` before touching credentials; a worker
calls it at start-up (a Celery signal), so a missing or malformed key stops it at once instead of
failing the first send. The first :func:`database` call of a process checks that the schema is
migrated (:class:`~dispatcher.errors.SchemaError` names the fix); a failed check is not
remembered, so the next call checks again.
"""

from __future__ import annotations

from functools import lru_cache

from dispatcher.config import get_settings
from dispatcher.runtime.db import Database
from dispatcher.runtime.keys import configure_key_ring
from dispatcher.runtime.schema import require_current_schema
from models import credential_keys


@lru_cache(maxsize=1)
def database() -> Database:
    settings = get_settings()
    settings.ensure_data_dir()
    checked = Database(settings.resolved_database_url)
    try:
        require_current_schema(checked.engine)
    except BaseException:
        checked.dispose()
        raise
    return checked


def ensure_ready() -> None:
    """Configure the key ring from the settings once per process."""
    if not credential_keys.is_configured:
        configure_key_ring(get_settings())


def reset() -> None:
    """Forget the database (tests and the CLI change the environment between runs)."""
    if database.cache_info().currsize:
        database().dispose()
    database.cache_clear()
