"""The committed ``openapi.json`` against the application: every operation, with inputs
schemathesis derives from the document, answers no 5xx, and every answer has a status code,
content type and body the document declares.

The application runs in this process (schemathesis' ASGI transport) on the session's
PostgreSQL and Redis, authenticated with a real key of an organisation that has a workflow, two
subscribers and a topic, so that operations get past 401 and their path ids sometimes exist.
The run is bounded (few examples per operation, derandomized) so that it is the same on every
run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dispatcher import run_action
from dispatcher.api import create_app
from dispatcher.api.keys import create_key
from dispatcher.api.nul_characters import MESSAGE as NUL_MESSAGE
from dispatcher.api.rate_limit import api_rate_store
from dispatcher.api.schemas import MAX_PAGE
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.organisations import create_organisation
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, wire, workflow

DOCUMENT = Path(__file__).resolve().parents[3] / "openapi.json"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def seeded_caller(fake: FakeProviderServer) -> dict[str, str]:
    """The headers of a real key of a new organisation with something for the path ids to
    name: an integration, a workflow, two subscribers and a topic."""
    organisation_id = create_organisation(f"Schemathesis {uuid.uuid4().hex[:6]}")
    wire(fake, organisation_id, ("primary",))
    workflow(organisation_id, "welcome", [EMAIL_STEP])
    subscriber(organisation_id, "alice")
    subscriber(organisation_id, "bob")
    run_action("create_topic", {"key": "news", "name": "News"}, organisation_id=organisation_id)
    return {"Authorization": f"ApiKey {create_key(organisation_id, 'schemathesis').key}"}


@pytest.fixture
def caller_headers(postgres_url: str, fake_provider: FakeProviderServer) -> dict[str, str]:
    return seeded_caller(fake_provider)


schema = schemathesis.openapi.from_path(DOCUMENT)


@pytest.fixture
def application(
    postgres_url: str, redis_url: str, settings_env: Callable[..., None]
) -> Iterator[FastAPI]:
    """A new application for each operation, the one the cases of :data:`schema` are sent to."""
    # Far above what the examples send: a 429 would hide the answer under test.
    settings_env(api_rate_limit_per_second=100_000, api_rate_limit_burst=100_000)
    api_rate_store.cache_clear()
    app = create_app()
    # Sends the cases through schemathesis' ASGI transport (the document has no server URL).
    schema.app = app
    yield app
    schema.app = None
    api_rate_store.cache_clear()


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, application: FastAPI, caller_headers: dict[str, str]
) -> None:
    case.call_and_validate(app=application, headers=caller_headers, checks=CHECKS)


#: Scenarios that chain operations by the links schemathesis infers from the document (an id an
#: answer carries, fed to the operation whose path names it): real ids, past the 404s.
LinkedOperations = schema.as_state_machine()


def test_linked_operations_answer_as_documented(
    application: FastAPI, postgres_url: str, fake_provider: FakeProviderServer
) -> None:
    class Scenario(LinkedOperations):  # type: ignore[misc,valid-type]
        def setup(self) -> None:
            # Each scenario in an organisation of its own: the same draws meet the same rows
            # (a scenario deleting the integration would change what the next one can draw).
            self.headers = seeded_caller(fake_provider)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"app": application, "headers": self.headers}

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=CHECKS, headers=self.headers)

    Scenario.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )


# What the run above found, pinned as plain cases (each a 500 or an undocumented answer before).


def test_a_nul_character_in_the_query_or_the_path_is_422_naming_it(
    client: TestClient, keyed: Keyed
) -> None:
    listed = client.get("/v1/notifications?templates=%00", headers=keyed.headers)
    assert listed.status_code == 422
    assert listed.json()["errors"] == {"templates": {"messages": [NUL_MESSAGE]}}
    fetched = client.get("/v2/subscribers/a%00b", headers=keyed.headers)
    assert fetched.status_code == 422
    assert fetched.json()["errors"] == {"path": {"messages": [NUL_MESSAGE]}}


def test_a_page_beyond_the_last_is_422_not_an_offset_overflow(
    client: TestClient, keyed: Keyed
) -> None:
    for path in ("/v1/notifications", "/v1/messages"):
        answer = client.get(path, params={"page": MAX_PAGE + 1}, headers=keyed.headers)
        assert answer.status_code == 422
        assert list(answer.json()["errors"]) == ["page"]
        assert (
            client.get(path, params={"page": MAX_PAGE}, headers=keyed.headers).json()["data"] == []
        )


def test_a_json_body_that_is_not_utf8_is_422_naming_the_body(
    client: TestClient, keyed: Keyed
) -> None:
    answer = client.post(
        "/v1/integrations",
        content=b'{"name": "\xff"}',
        headers={**keyed.headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["errors"] == {"body": {"messages": ["must be JSON encoded as UTF-8"]}}


def test_a_broadcast_to_a_bad_workflow_name_is_novus_400_naming_it(
    client: TestClient, keyed: Keyed
) -> None:
    answer = client.post(
        "/v1/events/trigger/broadcast", json={"name": "\x00", "payload": {}}, headers=keyed.headers
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["type"] == "PAYLOAD_VALIDATION"
    assert [error["field"] for error in body["errors"]] == ["name"]
