"""An API key of a fresh organisation, and the application in this process (httpx's ASGI
transport through Starlette's TestClient) on the session's PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from dispatcher.api import create_app
from dispatcher.api.keys import create_key
from dispatcher.api.rate_limit import api_rate_store


@dataclass(frozen=True)
class Keyed:
    organisation_id: uuid.UUID
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"ApiKey {self.key}"}


@pytest.fixture
def keyed(organisation_id: uuid.UUID) -> Keyed:
    return Keyed(organisation_id, create_key(organisation_id, "tests").key)


@pytest.fixture
def client(postgres_url: str, redis_url: str) -> Iterator[TestClient]:
    api_rate_store.cache_clear()
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client
    api_rate_store.cache_clear()
