"""``dispatcher api-keys``: a key printed once and then usable, listed by prefix, revoked."""

from __future__ import annotations

import json
import uuid

from click.testing import CliRunner
from fastapi.testclient import TestClient

from dispatcher.api import create_app
from dispatcher.cli.main import main


def run(*arguments: str) -> tuple[int, str]:
    outcome = CliRunner().invoke(main, list(arguments))
    return outcome.exit_code, outcome.output


def test_create_list_and_revoke(organisation_id: uuid.UUID, redis_url: str) -> None:
    code, output = run("api-keys", "create", "--org", str(organisation_id), "--name", "backend")
    assert code == 0, output
    key = output.strip()
    assert key.startswith("nv_")
    code, output = run("api-keys", "list", "--org", str(organisation_id), "--json")
    [listed] = json.loads(output)
    assert (listed["name"], listed["prefix"], listed["revoked_at"]) == ("backend", key[:10], None)
    assert key not in output
    headers = {"Authorization": f"ApiKey {key}"}
    with TestClient(create_app()) as client:
        assert client.delete("/v1/events/trigger/tx", headers=headers).status_code == 200
        code, output = run("api-keys", "revoke", listed["prefix"], "--org", str(organisation_id))
        assert (code, output.strip()) == (0, "revoked")
        assert client.delete("/v1/events/trigger/tx", headers=headers).status_code == 401
    code, output = run("api-keys", "revoke", listed["prefix"], "--org", str(organisation_id))
    assert code != 0 and "no active key" in output


def test_create_refuses_an_unknown_organisation(postgres_url: str) -> None:
    code, output = run("api-keys", "create", "--org", str(uuid.uuid4()), "--name", "x")
    assert code != 0 and "no organisation" in output
    code, output = run("api-keys", "create", "--org", "not-a-uuid", "--name", "x")
    assert code != 0 and "--org is not a UUID" in output
