"""The integrations router against PostgreSQL: Novu's names in, this project's rows out,
credentials encrypted and never answered, and another organisation's ids answering 404."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from dispatcher.api.keys import create_key
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import Integration, IntegrationStatus
from tests.dispatcher.api.conftest import Keyed
from tests.security.support import Route, ScriptedServer

URL = "/v1/integrations"
SECRET = "SG.very-secret-key"


def sendgrid(**extra: Any) -> dict[str, Any]:
    return {
        "providerId": "sendgrid",
        "channel": "email",
        "name": "Mail",
        "identifier": "mail-1",
        "credentials": {"apiKey": SECRET, "from": "no-reply@example.com", "senderName": "Acme"},
        **extra,
    }


def stored(integration_id: str) -> Integration:
    with database().session() as session:
        row = session.get(Integration, uuid.UUID(integration_id))
        assert row is not None
        session.expunge(row)
        return row


def test_create_maps_novus_names_and_never_answers_the_credentials(
    client: TestClient, keyed: Keyed
) -> None:
    created = client.post(URL, headers=keyed.headers, json=sendgrid())
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert SECRET not in created.text and "credentials" not in data
    assert {k: data[k] for k in ("name", "identifier", "providerId", "channel", "active", "primary",
                                 "deleted", "_environmentId", "_organizationId")} == {
        "name": "Mail", "identifier": "mail-1", "providerId": "sendgrid", "channel": "email",
        "active": True, "primary": False, "deleted": False, "_environmentId": "production",
        "_organizationId": str(keyed.organisation_id),
    }  # fmt: skip
    row = stored(data["_id"])
    assert row.provider == "sendgrid"
    assert row.credentials == {"api_key": SECRET}
    assert row.settings == {"from_email": "no-reply@example.com", "from_name": "Acme"}
    with database().session() as session:
        raw = session.scalar(
            text("SELECT credentials::text FROM integrations WHERE id = :id"), {"id": row.id}
        )
    assert raw is not None and SECRET not in raw


def test_project_names_map_to_novus_ids_both_ways(client: TestClient, keyed: Keyed) -> None:
    smtp = {"providerId": "nodemailer", "credentials": {
        "user": "u", "password": "p", "host": "smtp.example.com", "port": "2525", "secure": True,
        "from": "a@example.com"}}  # fmt: skip
    vonage = {
        "providerId": "nexmo",
        "credentials": {"apiKey": "k", "secretKey": "s", "from": "Acme"},
    }
    for body in (smtp, vonage):
        answer = client.post(URL, headers=keyed.headers, json=body)
        assert answer.status_code == 201, answer.text
        assert answer.json()["data"]["providerId"] == body["providerId"]
    with database().session() as session:
        rows = {
            row.provider: row
            for row in session.scalars(
                select(Integration).where(Integration.organisation_id == keyed.organisation_id)
            )
        }
    assert rows["smtp"].settings == {
        "host": "smtp.example.com", "port": "2525", "security": "ssl", "from_email": "a@example.com"
    }  # fmt: skip
    assert rows["vonage"].credentials == {"api_key": "k", "api_secret": "s"}


def test_bad_credentials_are_refused_naming_the_field_never_the_value(
    client: TestClient, keyed: Keyed
) -> None:
    unknown = client.post(
        URL,
        headers=keyed.headers,
        json={"providerId": "sendgrid", "credentials": {"token": SECRET}},
    )
    assert unknown.status_code == 422, unknown.text
    assert "credentials.token" in unknown.json()["errors"]
    assert SECRET not in unknown.text
    missing = client.post(
        URL, headers=keyed.headers, json={"providerId": "twilio", "credentials": {"token": SECRET}}
    )
    assert missing.status_code == 422, missing.text
    assert "credentials" in missing.json()["errors"] and SECRET not in missing.text
    provider = client.post(URL, headers=keyed.headers, json={"providerId": "pigeon"})
    assert provider.status_code == 422 and "providerId" in provider.json()["errors"]


def test_update_set_primary_and_delete(client: TestClient, keyed: Keyed) -> None:
    first = client.post(URL, headers=keyed.headers, json=sendgrid()).json()["data"]
    second = client.post(URL, headers=keyed.headers, json=sendgrid(identifier="mail-2")).json()[
        "data"
    ]
    primary = client.post(f"{URL}/{second['_id']}/set-primary", headers=keyed.headers)
    assert primary.status_code == 200, primary.text
    assert primary.json()["data"]["primary"] is True

    updated = client.put(
        f"{URL}/{second['_id']}",
        headers=keyed.headers,
        json={"name": "Renamed", "credentials": {"senderName": "Acme Ltd"}},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"]["name"] == "Renamed"
    row = stored(second["_id"])
    assert row.credentials == {"api_key": SECRET}, "a settings-only change keeps the secret"
    assert row.settings["from_name"] == "Acme Ltd"

    inactive = client.put(f"{URL}/{first['_id']}", headers=keyed.headers, json={"active": False})
    assert inactive.json()["data"]["active"] is False
    active = client.get(f"{URL}/active", headers=keyed.headers).json()["data"]
    assert [item["_id"] for item in active] == [second["_id"]]

    deleted = client.delete(f"{URL}/{second['_id']}", headers=keyed.headers)
    assert deleted.status_code == 200, deleted.text
    assert [item["_id"] for item in deleted.json()["data"]] == [first["_id"]]
    assert stored(second["_id"]).status is IntegrationStatus.INACTIVE
    again = client.put(f"{URL}/{second['_id']}", headers=keyed.headers, json={"name": "x"})
    assert again.status_code == 404


def test_webhook_integrations_are_listed_without_a_channel(
    client: TestClient, keyed: Keyed
) -> None:
    answer = client.post(
        URL,
        headers=keyed.headers,
        json={"providerId": "webhook", "credentials": {
            "secretKey": "s" * 32, "webhookUrl": "https://hooks.example.com/x"}},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    [listed] = client.get(URL, headers=keyed.headers).json()["data"]
    assert (listed["providerId"], listed["channel"]) == ("webhook", None)


def test_another_organisations_integration_answers_404_like_a_missing_one(
    client: TestClient, keyed: Keyed
) -> None:
    mine = client.post(URL, headers=keyed.headers, json=sendgrid()).json()["data"]
    other = create_organisation("Other")
    theirs = {"Authorization": f"ApiKey {create_key(other, 'tests').key}"}
    assert client.get(URL, headers=theirs).json() == {"data": []}
    missing = f"{URL}/{uuid.uuid4()}"
    for path in (f"{URL}/{mine['_id']}", missing):
        assert client.put(path, headers=theirs, json={"name": "x"}).status_code == 404
        assert client.delete(path, headers=theirs).status_code == 404
        assert client.post(f"{path}/set-primary", headers=theirs).status_code == 404
    assert stored(mine["_id"]).name == "Mail"


def checked(client: TestClient, keyed: Keyed, url: str) -> dict[str, Any]:
    body = {"providerId": "fake-http", "credentials": {"apiKey": SECRET, "baseUrl": url}}
    created = client.post(URL, headers=keyed.headers, json=body).json()["data"]
    answer = client.post(f"{URL}/{created['_id']}/test", headers=keyed.headers)
    assert answer.status_code == 200, answer.text
    assert SECRET not in answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def test_test_asks_the_provider_and_reports_its_answer(client: TestClient, keyed: Keyed) -> None:
    with ScriptedServer().running() as server:
        accepted = checked(client, keyed, server.route("/check", Route(200, '{"ok": true}')))
        assert accepted == {"ok": True, "detail": "HTTP 200", "askedProvider": True}
        refused = checked(client, keyed, server.route("/no", Route(401, f'{{"echo": "{SECRET}"}}')))
        assert refused["ok"] is False and "HTTP 401" in refused["detail"]
        assert [seen.path for seen in server.seen] == ["/check", "/no"]


def test_test_goes_through_the_url_guard(client: TestClient, keyed: Keyed) -> None:
    # 127.0.0.2 is loopback, and the suite's allow-list names 127.0.0.1 only.
    with ScriptedServer(host="127.0.0.2").running() as outside:
        refused = checked(client, keyed, outside.route("/check", Route(200, '{"ok": true}')))
        assert refused["ok"] is False
        assert "settings.url refused: host '127.0.0.2' is a loopback address" in refused["detail"]
        assert outside.seen == []


def test_test_of_another_organisations_integration_answers_404(
    client: TestClient, keyed: Keyed
) -> None:
    body = {"providerId": "fake-http", "credentials": {"apiKey": SECRET, "baseUrl": "http://x"}}
    mine = client.post(URL, headers=keyed.headers, json=body).json()["data"]
    theirs = {"Authorization": f"ApiKey {create_key(create_organisation('O'), 'tests').key}"}
    assert client.post(f"{URL}/{mine['_id']}/test", headers=theirs).status_code == 404
