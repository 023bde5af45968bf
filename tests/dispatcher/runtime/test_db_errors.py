"""A failed statement's error shows no parameter: they can hold a secret, an address or a payload."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dispatcher.runtime.db import build_engine

SECRET = "sk_live_do-not-show-me"


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_failed_statement_names_no_parameter(
    dialect: str, tmp_path: Path, postgres_url: str
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}" if dialect == "sqlite" else postgres_url
    engine = build_engine(url)
    try:
        with engine.connect() as connection, pytest.raises(DBAPIError) as failed:
            connection.execute(text("SELECT :token FROM no_such_table"), {"token": SECRET})
    finally:
        engine.dispose()
    assert "no_such_table" in str(failed.value)
    assert SECRET not in str(failed.value)
    assert SECRET not in repr(failed.value)
