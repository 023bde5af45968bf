"""Alembic environment. The database URL comes from the Alembic config (set by the caller)."""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import engine_from_config, pool

from models import Base
from models.types import EncryptedJSON, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render our column types as the plain types they store, so migrations import nothing of ours."""
    if type_ == "type" and isinstance(obj, EncryptedJSON):
        return "sa.Text()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def compare_type(
    context: Any,
    inspected_column: Any,
    metadata_column: Any,
    inspected_type: Any,
    metadata_type: Any,
) -> bool | None:
    if isinstance(metadata_type, EncryptedJSON | UTCDateTime):
        return not isinstance(inspected_type, type(metadata_type.impl))
    return None


def run_migrations() -> None:
    connectable = config.attributes.get("connection")
    options: dict[str, Any] = {
        "target_metadata": target_metadata,
        "render_item": render_item,
        "compare_type": compare_type,
        "render_as_batch": True,
    }
    if connectable is not None:
        context.configure(connection=connectable, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: give a database URL")
run_migrations()
