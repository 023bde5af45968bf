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
