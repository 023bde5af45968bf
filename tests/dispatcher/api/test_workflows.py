"""The workflows router against PostgreSQL: create, cursor pages, versions made by changes (by
the API and by the action alike), a notification sent by a real worker with the version it was
triggered with, soft deletion, field-named 422s and tenant isolation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update

from dispatcher import Ok, run_action, trigger
from dispatcher.api.keys import create_key
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import Delivery, Notification
from models.types import utcnow
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, wait_until_terminal, wire

URL = "/v1/workflows"
DELAY = {"kind": "delay", "config": {"seconds": 3600}}


def email(body: str) -> dict[str, Any]:
    return {"kind": "email", "template": {"subject": "Hi", "body": body}}


def created(client: TestClient, keyed: Keyed, key: str, steps: list[Any]) -> dict[str, Any]:
    answer = client.post(URL, headers=keyed.headers, json={"key": key, "name": key.title(),
                                                           "steps": steps})  # fmt: skip
    assert answer.status_code == 201, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def test_create_list_get_and_delete(client: TestClient, keyed: Keyed) -> None:
    made = created(client, keyed, "welcome", [EMAIL_STEP])
    assert (made["key"], made["name"], made["version"], made["currentVersion"]) == (
        "welcome", "Welcome", 1, 1,
    )  # fmt: skip
    assert [(s["position"], s["kind"]) for s in made["steps"]] == [(0, "email")]
    created(client, keyed, "digest", [{"kind": "digest", "config": {"window_seconds": 60}},
                                      EMAIL_STEP])  # fmt: skip
    again = client.post(URL, headers=keyed.headers,
                        json={"key": "welcome", "name": "W", "steps": [EMAIL_STEP]})  # fmt: skip
    assert again.status_code == 422 and list(again.json()["errors"]) == ["key"]

    page = client.get(URL, headers=keyed.headers, params={"limit": 1}).json()
    assert [w["key"] for w in page["data"]] == ["digest"] and page["totalCount"] == 2
    rest = client.get(URL, headers=keyed.headers, params={"after": page["next"]}).json()
    assert [w["key"] for w in rest["data"]] == ["welcome"] and rest["next"] is None
    assert rest["data"][0]["steps"][0]["template"] == EMAIL_STEP["template"]
    found = client.get(URL, headers=keyed.headers, params={"key": "WEL"}).json()["data"]
    assert [w["key"] for w in found] == ["welcome"]

    deleted = client.delete(f"{URL}/welcome", headers=keyed.headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"data": {"acknowledged": True, "status": "deleted"}}
    assert client.get(f"{URL}/welcome", headers=keyed.headers).status_code == 404
    assert client.delete(f"{URL}/welcome", headers=keyed.headers).status_code == 404
    assert [w["key"] for w in client.get(URL, headers=keyed.headers).json()["data"]] == ["digest"]
    assert created(client, keyed, "welcome", [EMAIL_STEP])["_id"] != made["_id"], "key given up"


def test_changes_make_versions_each_readable(client: TestClient, keyed: Keyed) -> None:
    created(client, keyed, "code", [email("v1 {{ payload.code }}")])
    put = client.put(f"{URL}/code", headers=keyed.headers,
                     json={"name": "Code", "steps": [email("v2")], "critical": True})  # fmt: skip
    assert put.status_code == 200, put.text
    assert (put.json()["data"]["version"], put.json()["data"]["critical"]) == (2, True)
    patched = client.patch(f"{URL}/code", headers=keyed.headers, json={"name": "Renamed"})
    assert patched.status_code == 200, patched.text
    body = patched.json()["data"]
    assert (body["name"], body["version"], body["critical"]) == ("Renamed", 3, True)
    assert body["steps"][0]["template"]["body"] == "v2", "the steps copied"
    assert run_action("update_workflow", {"key": "code", "steps": [email("v4")]},
                      organisation_id=keyed.organisation_id) == Ok(4)  # fmt: skip

    current = client.get(f"{URL}/code", headers=keyed.headers).json()["data"]
    assert (current["version"], current["steps"][0]["template"]["body"]) == (4, "v4")
    first = client.get(f"{URL}/code", headers=keyed.headers, params={"version": 1}).json()
    assert (first["data"]["version"], first["data"]["currentVersion"]) == (1, 4)
    assert first["data"]["steps"][0]["template"]["body"] == "v1 {{ payload.code }}"
    missing = client.get(f"{URL}/code", headers=keyed.headers, params={"version": 9})
    assert missing.status_code == 404
    versions = client.get(f"{URL}/code/versions", headers=keyed.headers)
    assert versions.status_code == 200, versions.text
    assert [(v["version"], v["current"], v["steps"][0]["template"]["body"])
            for v in versions.json()["data"]] == [
        (4, True, "v4"), (3, False, "v2"), (2, False, "v2"), (1, False, "v1 {{ payload.code }}"),
    ]  # fmt: skip


def test_bad_steps_are_named_by_step_and_field(client: TestClient, keyed: Keyed) -> None:
    created(client, keyed, "code", [EMAIL_STEP])
    steps = [EMAIL_STEP, email("{% if %}"), {"kind": "delay", "config": {}}, {"kind": "fax"}]
    for method, path, body in (
        ("POST", URL, {"key": "bad", "name": "Bad", "steps": steps}),
        ("PUT", f"{URL}/code", {"name": "Code", "steps": steps}),
        ("PATCH", f"{URL}/code", {"steps": steps}),
    ):
        answer = client.request(method, path, headers=keyed.headers, json=body)
        assert answer.status_code == 422, answer.text
        errors = answer.json()["errors"]
        assert set(errors) == {"steps.1.template.body", "steps.2", "steps.3.kind"}, errors
        assert errors["steps.1.template.body"]["messages"][0].startswith("template syntax error")
        assert "config.seconds" in errors["steps.2"]["messages"][0]
    nothing = client.patch(f"{URL}/code", headers=keyed.headers, json={"steps": []})
    assert nothing.status_code == 422 and list(nothing.json()["errors"]) == ["steps"]
    assert client.get(f"{URL}/code", headers=keyed.headers).json()["data"]["version"] == 1


def test_a_keyed_cron_digest_is_accepted_and_its_bad_options_are_named(
    client: TestClient, keyed: Keyed
) -> None:
    config = {"key": "{{ payload.project }}", "cron": "0  9 * * *", "timezone": "Europe/Berlin"}
    made = created(client, keyed, "daily", [{"kind": "digest", "config": config}, EMAIL_STEP])
    assert made["steps"][0]["config"] == {**config, "cron": "0 9 * * *"}
    bad = [
        {"kind": "digest", "config": {"cron": "0 9 * *", "timezone": "Nowhere/Land"}},
        EMAIL_STEP,
        {"kind": "digest", "config": {"window_seconds": 5, "key": "{{ x"}},
    ]
    for method, path, body in (
        ("POST", URL, {"key": "bad", "name": "Bad", "steps": bad}),
        ("PATCH", f"{URL}/daily", {"steps": bad}),
    ):
        answer = client.request(method, path, headers=keyed.headers, json=body)
        assert answer.status_code == 422, answer.text
        errors = answer.json()["errors"]
        assert set(errors) == {"steps.0.config.cron", "steps.2.config.key"}, errors
        assert errors["steps.0.config.cron"]["messages"][0].startswith("five fields are needed")


def test_another_organisations_workflows_read_as_missing(client: TestClient, keyed: Keyed) -> None:
    created(client, keyed, "mine", [EMAIL_STEP])
    organisation = create_organisation(f"Other {uuid.uuid4().hex[:6]}")
    other = Keyed(organisation, create_key(organisation, "other").key)
    assert client.get(URL, headers=other.headers).json()["data"] == []
    for method, path, body in (
        ("GET", f"{URL}/mine", None), ("GET", f"{URL}/mine/versions", None),
        ("PATCH", f"{URL}/mine", {"name": "x"}), ("DELETE", f"{URL}/mine", None),
        ("PUT", f"{URL}/mine", {"name": "x", "steps": [EMAIL_STEP]}),
    ):  # fmt: skip
        assert client.request(method, path, headers=other.headers, json=body).status_code == 404
    assert client.get(f"{URL}/mine", headers=keyed.headers).json()["data"]["version"] == 1


@pytest.mark.usefixtures("worker")
def test_a_notification_is_sent_with_the_version_it_was_triggered_with(
    client: TestClient, keyed: Keyed, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, keyed.organisation_id, ("primary",))
    subscriber(keyed.organisation_id, "ada")
    created(client, keyed, "code", [DELAY, email("old {{ payload.code }}")])
    triggered = client.post("/v1/events/trigger", headers=keyed.headers, json={
        "name": "code", "to": "ada", "payload": {"code": "7"}, "transactionId": "tx-old"})  # fmt: skip
    assert triggered.status_code == 201, triggered.text
    changed = client.put(
        f"{URL}/code",
        headers=keyed.headers,
        json={"name": "Code", "steps": [DELAY, email("new {{ payload.code }}")]},
    )
    assert changed.status_code == 200 and changed.json()["data"]["version"] == 2
    with database().transaction() as session:  # the delay is over
        session.execute(
            update(Delivery)
            .where(Delivery.organisation_id == keyed.organisation_id)
            .values(next_attempt_at=utcnow())
        )
    [view] = wait_until_terminal(keyed.organisation_id, "tx-old")
    assert view.status == "sent", view.last_error
    with database().session() as session:
        content, version = session.execute(
            select(Delivery.content, Notification.workflow_version)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(
                Notification.transaction_id == "tx-old",
                Notification.organisation_id == keyed.organisation_id,
            )
        ).one()
    assert (content["body"], version) == ("old 7", 1)


def statements_of_a_trigger(organisation_id: uuid.UUID, key: str, to: str) -> list[str]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    engine = database().engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        trigger(organisation_id, key, to, {"code": "1"})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_a_trigger_of_a_changed_workflow_costs_the_statements_of_an_unchanged_one(
    client: TestClient, keyed: Keyed
) -> None:
    for key in ("plain", "changed"):
        created(client, keyed, key, [DELAY, email("{{ payload.code }}")])
    for version in range(2, 5):
        answer = client.patch(f"{URL}/changed", headers=keyed.headers,
                              json={"steps": [DELAY, email(f"v{version} {{{{ payload.code }}}}")]})  # fmt: skip
        assert answer.json()["data"]["version"] == version
    for name in ("ada", "bo", "cy", "di"):
        subscriber(keyed.organisation_id, name)
    statements_of_a_trigger(keyed.organisation_id, "plain", "ada")  # warm: caches, templates
    statements_of_a_trigger(keyed.organisation_id, "changed", "bo")
    plain = statements_of_a_trigger(keyed.organisation_id, "plain", "cy")
    changed = statements_of_a_trigger(keyed.organisation_id, "changed", "di")
    assert len(changed) == len(plain), (plain, changed)
    with database().session() as session:
        steps = session.scalars(
            select(Delivery.step_id).where(Delivery.organisation_id == keyed.organisation_id)
        ).all()
    assert len(steps) == 4 and None not in steps


FETCH = {"kind": "fetch", "config": {"url": "https://api.example.com/u/{{ subscriber.subscriber_id }}",
                                     "merge_key": "user"}}  # fmt: skip


def test_a_fetch_step_is_accepted_and_its_bad_config_named_by_field(
    client: TestClient, keyed: Keyed
) -> None:
    made = created(client, keyed, "fetching", [FETCH, email("Hi {{ payload.user.name }}")])
    assert [(s["kind"], s["config"]) for s in made["steps"]] == [
        ("fetch", FETCH["config"]), ("email", {}),
    ]  # fmt: skip
    bad = {"kind": "fetch", "config": {"url": "gopher://x", "method": "DELETE"}}
    answer = client.post(URL, headers=keyed.headers,
                         json={"key": "bad-fetch", "name": "B", "steps": [EMAIL_STEP, bad]})  # fmt: skip
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert list(errors) == ["steps.1.config.url"], errors
    assert errors["steps.1.config.url"]["messages"] == [
        "an http:// or https:// URL (templates may fill in what follows)"
    ]
