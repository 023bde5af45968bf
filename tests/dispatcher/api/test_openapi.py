"""The committed ``openapi.json`` is the one the application serves (``make openapi``)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from dispatcher.api.openapi import document

COMMITTED = Path(__file__).parents[3] / "openapi.json"


def test_the_committed_document_is_the_served_one(client: TestClient) -> None:
    served = client.get("/openapi.json")
    assert served.status_code == 200
    committed = json.loads(COMMITTED.read_text())
    assert served.json() == committed == document(), "run `make openapi` and commit the file"


def test_the_document_names_novus_routes_and_the_key_scheme() -> None:
    paths = document()["paths"]
    assert {"/v1/events/trigger", "/v1/events/trigger/bulk", "/v1/events/trigger/broadcast",
            "/v1/events/trigger/{transactionId}"} <= set(paths)  # fmt: skip
    assert paths["/v1/events/trigger"]["post"]["security"] == [{"APIKeyHeader": []}]


def test_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
