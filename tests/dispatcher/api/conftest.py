"""An API key of a fresh organisation, the application in this process (httpx's ASGI
transport through Starlette's TestClient) on the session's PostgreSQL and Redis, and, for the
tests of Novu's own SDK, a real ``dispatcher api`` process (one per module) and an SDK client
with a key of the test's organisation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from novu_py import Novu

from dispatcher.api import create_app
from dispatcher.api.keys import create_key
from dispatcher.api.rate_limit import api_rate_store
from dispatcher.dev.api_process import running_api
from tests.conftest import DATA_DIR, free_port

#: The output of the SDK tests' API processes (appended to, module after module).
API_LOG = DATA_DIR / "api.log"


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


@pytest.fixture(scope="module")
def api_url(postgres_url: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    with running_api(port=port, log_file=API_LOG):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def novu(api_url: str, organisation_id: uuid.UUID) -> Iterator[Novu]:
    key = create_key(organisation_id, "sdk").key
    with Novu(server_url=api_url, secret_key=key) as client:
        yield client
