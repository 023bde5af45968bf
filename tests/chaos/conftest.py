"""Fixtures of the chaos tests: the services must be there, and figures reach the terminal."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
import sqlalchemy as sa

from tests.chaos.stack import CHAOS_REDIS_URL
from tests.conftest import POSTGRES_ADMIN_URL, service_missing


@pytest.fixture(scope="session")
def chaos_services() -> None:
    """PostgreSQL and Redis reachable (skipped locally, failed under CI, when they are not)."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL)
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError as exc:
        service_missing("PostgreSQL", exc)
    finally:
        admin.dispose()
    client = redis.Redis.from_url(CHAOS_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        service_missing("Redis", exc)
    finally:
        client.close()


@pytest.fixture
def say(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print past pytest's capture: the figures of a run belong in its output."""

    def emit(text: str) -> None:
        with capsys.disabled():
            print(f"\n[chaos] {text}", flush=True)

    return emit
