"""Is the database migrated? Checked once per process, before the first query, so a forgotten
``dispatcher db upgrade`` is one sentence naming the fix, not "no such table" from deep inside
a query."""

from __future__ import annotations

from sqlalchemy import Engine

from dispatcher.errors import SchemaError
from dispatcher.runtime.db import DATABASE_UNAVAILABLE
from models.migrate import applied_revisions, head_revisions, known_revisions

UPGRADE_HINT = "the database has no schema (or is behind): run `dispatcher db upgrade`"


def require_current_schema(engine: Engine) -> None:
    """Raise :class:`SchemaError` unless the database is at this code's latest migration.

    An unreachable database is not judged here: the caller's own query raises that error, as
    it would without this check.
    """
    try:
        with engine.connect() as connection:
            applied = applied_revisions(connection)
    except DATABASE_UNAVAILABLE:
        return
    heads = head_revisions()
    if applied == heads:
        return
    if not applied:
        raise SchemaError(f"{UPGRADE_HINT} (no migration was ever applied)")
    unknown = applied - known_revisions()
    if unknown:
        raise SchemaError(
            f"the database is at revision {', '.join(sorted(unknown))}, which this code does not "
            "know: it was migrated by a newer release; run that release (or its "
            "`dispatcher db upgrade`) instead"
        )
    raise SchemaError(
        f"{UPGRADE_HINT} (at {', '.join(sorted(applied))}, latest {', '.join(sorted(heads))})"
    )
