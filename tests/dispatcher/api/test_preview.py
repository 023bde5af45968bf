"""``POST /v1/preview``: a step rendered for a subscriber; nothing written; errors by step and line."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notifications.test_preview import STEPS, row_counts
from tests.dispatcher.notify_support import subscriber, workflow

PREVIEW = "/v1/preview"


def test_preview_renders_and_writes_nothing(client: TestClient, keyed: Keyed) -> None:
    subscriber(keyed.organisation_id, "ana", first_name="Ana", locale="pt-BR")
    workflow(keyed.organisation_id, "shipped", STEPS)
    before = row_counts(keyed.organisation_id)
    answer = client.post(
        PREVIEW,
        headers=keyed.headers,
        json={"workflow": "shipped", "step": 1, "subscriberId": "ana",
              "payload": {"orderId": "A-7", "express": True}},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {
        "step": 1, "kind": "email", "channel": "email", "locale": "pt", "conditionsHold": True,
        "content": {"subject": "Pedido A-7", "body": "Hi Ana,\nyour order A-7 shipped.",
                    "html": "<p>A-7</p>"},
        "warnings": [],
    }  # fmt: skip
    inline = client.post(
        PREVIEW,
        headers=keyed.headers,
        json={"workflow": "shipped", "step": 1, "payload": {"orderId": "B"},
              "subscriber": {"subscriberId": "new", "firstName": "Neu"}},
    )  # fmt: skip
    assert inline.json()["data"]["content"]["body"] == "Hi Neu,\nyour order B shipped."
    assert row_counts(keyed.organisation_id) == before


def test_a_template_error_is_422_naming_step_and_line(client: TestClient, keyed: Keyed) -> None:
    subscriber(keyed.organisation_id, "ana")
    workflow(keyed.organisation_id, "shipped", STEPS)
    answer = client.post(
        PREVIEW,
        headers=keyed.headers,
        json={"workflow": "shipped", "step": 2, "subscriberId": "ana", "payload": {"items": []}},
    )
    assert answer.status_code == 422
    [(field, detail)] = answer.json()["errors"].items()
    assert field == "steps.2.template.body"
    assert detail["messages"][0].startswith("step 2, body on line 2: ")


def test_unknown_workflow_or_subscriber_is_404_and_no_subscriber_is_422(
    client: TestClient, keyed: Keyed
) -> None:
    workflow(keyed.organisation_id, "shipped", STEPS)
    missing = {"workflow": "nope", "subscriberId": "ana"}
    assert client.post(PREVIEW, headers=keyed.headers, json=missing).status_code == 404
    nobody = {"workflow": "shipped", "step": 1, "subscriberId": "ghost"}
    assert client.post(PREVIEW, headers=keyed.headers, json=nobody).status_code == 404
    neither = client.post(PREVIEW, headers=keyed.headers, json={"workflow": "shipped"})
    assert (neither.status_code, list(neither.json()["errors"])) == (422, ["subscriberId"])


def test_a_fetch_step_is_rendered_not_made(client: TestClient, keyed: Keyed) -> None:
    subscriber(keyed.organisation_id, "ana", first_name="Ana")
    steps = [
        {"kind": "fetch", "config": {"url": "https://api.example.com/u/{{ subscriber.subscriber_id }}",
                                     "method": "POST", "body": {"id": "{{ payload.id }}"},
                                     "merge_key": "user"}},
        {"kind": "email", "template": {"body": "Plan {{ payload.user.plan }}"}},
    ]  # fmt: skip
    workflow(keyed.organisation_id, "fetching", steps)
    before = row_counts(keyed.organisation_id)
    answer = client.post(
        PREVIEW, headers=keyed.headers,
        json={"workflow": "fetching", "step": 0, "subscriberId": "ana", "payload": {"id": 5}},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert (data["kind"], data["channel"]) == ("fetch", None)
    assert data["content"] == {"method": "POST", "url": "https://api.example.com/u/ana",
                               "body": '{"id":"5"}'}  # fmt: skip
    assert [w["field"] for w in data["warnings"]] == ["steps.0"]
    after = client.post(
        PREVIEW, headers=keyed.headers,
        json={"workflow": "fetching", "step": 1, "subscriberId": "ana",
              "payload": {"user": {"plan": "gold"}}},
    )  # fmt: skip
    later = after.json()["data"]
    assert later["content"] == {"body": "Plan gold"}
    assert [w["field"] for w in later["warnings"]] == ["steps.0"]
    assert "does not make" in later["warnings"][0]["message"]
    assert row_counts(keyed.organisation_id) == before
