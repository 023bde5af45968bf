"""The Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models import Base
from models.migrate import downgrade, upgrade
from tests.conftest import DATA_DIR


def differences(url: str) -> list[object]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_sqlite_migrations_match_the_models_and_go_down_again() -> None:
    path = Path(DATA_DIR) / "migrations.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url)
    assert differences(url) == []
    downgrade(url, "base")
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names()) - {"alembic_version"}
    engine.dispose()
    assert tables == set()


def test_postgres_migrations_match_the_models(postgres_url: str) -> None:
    assert differences(postgres_url) == []
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
    engine.dispose()
    assert set(Base.metadata.tables) <= tables


def enum_columns() -> list[tuple[str, str, sa.Enum]]:
    """(table, column, type) of every enum column the models declare."""
    return [
        (table.name, column.name, column.type)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, sa.Enum)
    ]


def unlisted_enum_values(url: str) -> list[str]:
    """``table.column: value`` for each enum member the migrated CHECK constraint refuses."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            checks = {
                (table, check["name"]): str(check["sqltext"])
                for table in Base.metadata.tables
                for check in inspector.get_check_constraints(table)
            }
    finally:
        engine.dispose()
    missing = []
    for table, column, enum_type in enum_columns():
        allowed = checks.get((table, f"ck_{table}_{enum_type.name}"), "")
        missing += [
            f"{table}.{column}: {value}" for value in enum_type.enums if f"'{value}'" not in allowed
        ]
    return missing


def test_sqlite_migrations_allow_every_enum_value_the_models_have() -> None:
    path = Path(DATA_DIR) / "enum-migrations.sqlite3"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade(url)
    assert enum_columns()
    assert unlisted_enum_values(url) == []


def test_postgres_migrations_allow_every_enum_value_the_models_have(postgres_url: str) -> None:
    assert unlisted_enum_values(postgres_url) == []


def test_the_due_index_holds_only_deliveries_still_to_be_sent(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            definition = connection.scalar(
                sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_deliveries_due'")
            )
    finally:
        engine.dispose()
    assert definition is not None
    where = definition.partition(" WHERE ")[2]
    for status in ("queued", "retrying", "sending"):
        assert f"'{status}'" in where
    for status in ("sent", "failed", "skipped", "unknown", "cancelled"):
        assert f"'{status}'" not in where
