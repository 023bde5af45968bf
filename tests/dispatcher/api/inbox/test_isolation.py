"""One subscriber can never read, count or change another's messages: neither another
subscriber's of the same organisation nor those of a subscriber of the same name elsewhere.

Hypothesis draws a route of the feed and a victim's message id (or a random id); the answer to
the attacker must equal the answer for a random missing id (status and body but for the ids),
its lists and counts hold its own messages alone, and the victims' rows are unchanged.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dispatcher.runtime.resources import database
from models import InboxMessage
from tests.dispatcher.api.inbox.conftest import ACTIONS_BOTH, Inbox, make_inbox

Call = Callable[[TestClient, dict[str, str], str], Any]


def _patch(action: str, body: dict[str, Any] | None = None) -> Call:
    return lambda client, headers, target: client.patch(
        f"/v1/inbox/notifications/{target}/{action}", headers=headers, json=body
    )


def _bulk(action: str) -> Call:
    return lambda client, headers, target: client.post(
        f"/v1/inbox/notifications/{action}", headers=headers, json={"notificationIds": [target]}
    )


CALLS: dict[str, Call] = {
    **{name: _patch(name) for name in ("read", "unread", "archive", "unarchive", "unsnooze")},
    "snooze": _patch("snooze", {"snoozeUntil": "2999-01-01T00:00:00Z"}),
    "complete": _patch("complete", {"actionType": "primary"}),
    "revert": _patch("revert", {"actionType": "primary"}),
    "delete": lambda client, headers, target: client.delete(
        f"/v1/inbox/notifications/{target}/delete", headers=headers
    ),
    **{f"bulk-{name}": _bulk(name) for name in ("read", "seen", "archive", "read-archive")},
    "bulk-delete": _bulk("delete"),
    "after": lambda client, headers, target: client.get(
        "/v1/inbox/notifications", headers=headers, params={"after": target}
    ),
}


def _rows(ids: list[str]) -> list[tuple[Any, ...]]:
    with database().session() as session:
        return [
            (
                row.id,
                row.seen_at,
                row.read_at,
                row.archived_at,
                row.snoozed_until,
                row.completed_action,
                row.updated_at,
            )
            for row in session.scalars(
                select(InboxMessage)
                .where(InboxMessage.id.in_([uuid.UUID(item) for item in ids]))
                .order_by(InboxMessage.id)
            )
        ]


@pytest.fixture
def world(client: TestClient) -> tuple[Inbox, dict[str, str], list[str], list[str]]:
    home, away = make_inbox(client, "Home"), make_inbox(client, "Away")
    own = [home.put("ada", actions=ACTIONS_BOTH) for _ in range(2)]
    victims = [home.put("bo", actions=ACTIONS_BOTH), away.put("ada", actions=ACTIONS_BOTH)]
    victims.append(away.put("bo", actions=ACTIONS_BOTH))
    return home, home.headers("ada"), own, victims


def _scrubbed(answer: Any, target: str) -> tuple[int, Any]:
    if not answer.content:
        return answer.status_code, None
    body = json.loads(answer.text.replace(target, "<id>"))
    if isinstance(body, dict):
        body.pop("timestamp", None)
    return answer.status_code, body


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_subscriber_never_reaches_another_subscribers_messages(
    world: tuple[Inbox, dict[str, str], list[str], list[str]], data: st.DataObject
) -> None:
    inbox, headers, own, victims = world
    before = _rows(victims)
    name = data.draw(st.sampled_from(sorted(CALLS)), label="call")
    target = data.draw(st.sampled_from(victims) | st.uuids().map(str), label="target")
    missing = str(uuid.uuid4())
    attacked = CALLS[name](inbox.client, headers, target)
    control = CALLS[name](inbox.client, headers, missing)
    assert _scrubbed(attacked, target) == _scrubbed(control, missing)
    assert attacked.status_code in {204, 404, 422}, attacked.text
    assert _rows(victims) == before
    listed = inbox.client.get("/v1/inbox/notifications", headers=headers, params={"limit": 100})
    assert {item["id"] for item in listed.json()["data"]} <= set(own)
    counted = inbox.client.get("/v1/inbox/notifications/count", headers=headers).json()
    assert counted["data"][0]["count"] <= len(own)
