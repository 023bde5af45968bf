"""The actions router with the session's real worker: the catalogue, enqueue and wait, results
from the result backend, and an action never reaching another organisation."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dispatcher.api.keys import create_key
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import Integration, Subscriber
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notify_support import act

URL = "/v1/actions"

pytestmark = pytest.mark.usefixtures("worker")


def other_keyed() -> Keyed:
    organisation = create_organisation(f"Other {uuid.uuid4().hex[:6]}")
    return Keyed(organisation, create_key(organisation, "tests").key)


def subscribers(organisation_id: uuid.UUID) -> list[str]:
    with database().session() as session:
        return list(
            session.scalars(
                select(Subscriber.external_id).where(Subscriber.organisation_id == organisation_id)
            )
        )


def test_the_catalogue_lists_every_action_with_its_argument_schema(
    client: TestClient, keyed: Keyed
) -> None:
    answer = client.get(URL, headers=keyed.headers)
    assert answer.status_code == 200, answer.text
    actions = {item["name"]: item for item in answer.json()["data"]}
    assert {"create_integration", "create_subscriber", "set_primary_integration"} <= set(actions)
    schema = actions["create_integration"]["arguments"]
    assert {"name", "provider", "credentials"} <= set(schema["required"])
    assert actions["create_integration"]["description"].startswith("Connect a provider account")


def test_an_action_runs_for_the_keys_organisation_and_answers_its_result(
    client: TestClient, keyed: Keyed
) -> None:
    waited = client.post(
        f"{URL}/create_subscriber",
        headers=keyed.headers,
        params={"wait": 20},
        json={"externalId": "ada", "email": "ada@example.com"},
    )
    assert waited.status_code == 200, waited.text
    done = waited.json()["data"]
    assert (done["status"], done["result"]) == ("done", {"ok": True, "value": "ada"})
    assert subscribers(keyed.organisation_id) == ["ada"]

    queued = client.post(
        f"{URL}/create_subscriber", headers=keyed.headers, json={"external_id": "bo"}
    )
    assert queued.status_code == 202, queued.text
    task_id = queued.json()["data"]["taskId"]
    result = client.get(f"{URL}/{task_id}", headers=keyed.headers, params={"wait": 20})
    assert result.status_code == 200, result.text
    assert result.json()["data"]["result"] == {"ok": True, "value": "bo"}

    theirs = other_keyed()
    assert client.get(f"{URL}/{task_id}", headers=theirs.headers).status_code == 404
    assert client.get(f"{URL}/{uuid.uuid4()}", headers=keyed.headers).status_code == 404


def test_the_organisation_comes_from_the_key_never_from_the_body(
    client: TestClient, keyed: Keyed
) -> None:
    theirs = other_keyed()
    refused = client.post(
        f"{URL}/create_subscriber",
        headers=keyed.headers,
        json={"externalId": "eve", "organisationId": str(theirs.organisation_id)},
    )
    assert refused.status_code == 422, refused.text
    assert "organisationId" in refused.json()["errors"]
    # Another organisation's integration is not found from this key.
    foreign = act(theirs.organisation_id, "create_integration",
                  {"name": "x", "provider": "fake", "credentials": {"api_key": "k"}})  # fmt: skip
    answer = client.post(
        f"{URL}/update_integration",
        headers=keyed.headers,
        params={"wait": 20},
        json={"integrationId": str(foreign), "name": "stolen"},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()["data"]["result"]
    assert (result["ok"], result["code"]) == (False, "not_found")
    with database().session() as session:
        assert session.get(Integration, foreign).name == "x"  # type: ignore[union-attr]
    assert subscribers(theirs.organisation_id) == []


def test_unknown_actions_and_bad_arguments_are_refused(client: TestClient, keyed: Keyed) -> None:
    assert client.post(f"{URL}/fly", headers=keyed.headers, json={}).status_code == 404
    bad = client.post(f"{URL}/create_subscriber", headers=keyed.headers, json={"email": 3})
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"] == {
        "externalId": {"messages": ["Field required"]},
        "email": {"messages": ["Input should be a valid string"]},
    }
