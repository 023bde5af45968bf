"""Fixtures of the notification tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models.migrate import upgrade


@pytest.fixture
def sqlite_organisation(tmp_path: Path, settings_env: Callable[..., None]) -> Iterator[uuid.UUID]:
    """An organisation in an embedded (SQLite) database of its own."""
    url = f"sqlite:///{tmp_path / 'dispatcher.sqlite3'}"
    upgrade(url)
    settings_env(database_url=url)
    database.cache_clear()
    try:
        yield create_organisation("Embedded")
    finally:
        database().dispose()
        database.cache_clear()
