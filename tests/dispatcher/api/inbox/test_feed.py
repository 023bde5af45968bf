"""The feed: pages and filters, counts, marks of one, some and all, snooze, delete, actions,
and the subscriber's own preferences."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from dispatcher.api.routers.inbox import router
from models.types import utcnow
from tests.dispatcher.api.inbox.conftest import Inbox, ago

ACTIONS = {
    "primary": {"label": "Accept", "url": "https://app.example.com/accept"},
    "secondary": {"label": "Decline", "url": None},
}


def _list(inbox: Inbox, headers: dict[str, str], **query: Any) -> dict[str, Any]:
    answer = inbox.client.get("/v1/inbox/notifications", headers=headers, params=query)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["data"]]


def _counts(inbox: Inbox, headers: dict[str, str], *filters: dict[str, Any]) -> list[int]:
    answer = inbox.client.get(
        "/v1/inbox/notifications/count",
        headers=headers,
        params={"filters": json.dumps(list(filters))},
    )
    assert answer.status_code == 200, answer.text
    return [item["count"] for item in answer.json()["data"]]


def test_pages_are_newest_first_with_the_last_id_as_cursor(inbox: Inbox) -> None:
    ids = [inbox.put("ada", f"m{n}", created_at=ago(100 - n)) for n in range(5)]
    headers = inbox.headers("ada")
    first = _list(inbox, headers, limit=2)
    assert _ids(first) == [ids[4], ids[3]]
    assert first["hasMore"] is True
    second = _list(inbox, headers, limit=2, after=ids[3])
    assert _ids(second) == [ids[2], ids[1]]
    last = _list(inbox, headers, limit=2, after=ids[1])
    assert _ids(last) == [ids[0]]
    assert last["hasMore"] is False
    assert _ids(_list(inbox, headers, limit=2, offset=3)) == [ids[1], ids[0]]
    item = first["data"][0]
    assert item["body"] == "m4"
    assert item["to"]["subscriberId"] == "ada"
    assert (item["isRead"], item["isSeen"], item["isArchived"], item["isSnoozed"]) == (
        False, False, False, False,
    )  # fmt: skip
    assert item["channelType"] == "in_app"
    bad = inbox.client.get("/v1/inbox/notifications", headers=headers, params={"after": "x"})
    assert bad.status_code == 422


def test_filters_and_counts_of_several_filters_in_one_call(inbox: Inbox) -> None:
    billing = inbox.workflow("billing")
    a = inbox.put("ada", tags=["billing"], workflow_id=billing, created_at=ago(3))
    b = inbox.put("ada", tags=["social"], created_at=ago(2))
    c = inbox.put("ada", tags=["billing", "urgent"], created_at=ago(1))
    headers = inbox.headers("ada")
    inbox.client.patch(f"/v1/inbox/notifications/{a}/read", headers=headers)
    inbox.client.patch(f"/v1/inbox/notifications/{b}/archive", headers=headers)
    assert _ids(_list(inbox, headers, read="false")) == [c]
    assert _ids(_list(inbox, headers, archived="true")) == [b]
    assert _ids(_list(inbox, headers, archived="false")) == [c, a]
    assert _ids(_list(inbox, headers, seen="true")) == [b, a]
    assert _ids(_list(inbox, headers, **{"tags[]": "billing"})) == [c, a]
    assert _ids(_list(inbox, headers, **{"tags[0][]": "billing", "tags[1][]": "urgent"})) == [c]
    assert _ids(_list(inbox, headers, **{"workflows[]": "billing"})) == [a]
    assert (
        _list(inbox, headers, **{"workflows[]": "billing"})["data"][0]["workflow"]["identifier"]
        == "billing"
    )
    assert _counts(
        inbox,
        headers,
        {"read": False, "archived": False},
        {"seen": False},
        {"archived": True},
        {"tags": ["billing"]},
        {"tags": {"and": [{"or": ["billing"]}, {"or": ["urgent"]}]}},
        {},
    ) == [1, 1, 1, 2, 1, 3]
    refused = inbox.client.get(
        "/v1/inbox/notifications/count", headers=headers, params={"filters": "{}"}
    )
    assert refused.status_code == 422


def test_marks_of_one_message(inbox: Inbox) -> None:
    message = inbox.put("ada")
    headers = inbox.headers("ada")
    route = f"/v1/inbox/notifications/{message}"

    def mark(action: str) -> dict[str, Any]:
        answer = inbox.client.patch(f"{route}/{action}", headers=headers)
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    read = mark("read")
    assert (read["isRead"], read["isSeen"], read["readAt"] is not None) == (True, True, True)
    assert mark("unread")["isRead"] is False
    archived = mark("archive")
    assert (archived["isArchived"], archived["isRead"]) == (True, True)
    assert mark("unarchive")["isArchived"] is False
    assert inbox.client.patch(f"{route[:-5]}nope/read", headers=headers).status_code == 404


def test_marks_of_a_list_and_of_all(inbox: Inbox) -> None:
    ids = [inbox.put("ada", tags=["t"] if n else []) for n in range(4)]
    headers = inbox.headers("ada")
    seen = inbox.client.post(
        "/v1/inbox/notifications/seen", headers=headers, json={"notificationIds": ids[:2]}
    )
    assert seen.status_code == 204
    assert _counts(inbox, headers, {"seen": True}, {"read": True}) == [2, 0]
    inbox.client.post("/v1/inbox/notifications/read", headers=headers, json={"tags": ["t"]})
    assert _counts(inbox, headers, {"read": True}) == [3]
    inbox.client.post("/v1/inbox/notifications/read-archive", headers=headers, json={})
    assert _counts(inbox, headers, {"archived": True}) == [3]
    inbox.client.post("/v1/inbox/notifications/read", headers=headers, json={})
    assert _counts(inbox, headers, {"read": True}, {"archived": True}) == [4, 0]
    inbox.client.post("/v1/inbox/notifications/archive", headers=headers, json={})
    assert _counts(inbox, headers, {"archived": True}) == [4]
    gone = inbox.client.post(
        "/v1/inbox/notifications/delete", headers=headers, json={"notificationIds": ids[:1]}
    )
    assert gone.status_code == 204
    assert _counts(inbox, headers, {}) == [3]


def test_snooze_hides_until_the_time_and_unsnooze_brings_back(inbox: Inbox) -> None:
    message = inbox.put("ada")
    headers = inbox.headers("ada")
    until = (utcnow() + timedelta(hours=1)).isoformat()
    answer = inbox.client.patch(
        f"/v1/inbox/notifications/{message}/snooze", headers=headers, json={"snoozeUntil": until}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["isSnoozed"] is True
    assert _ids(_list(inbox, headers)) == []
    assert _ids(_list(inbox, headers, snoozed="true")) == [message]
    assert inbox.session("ada").json()["data"]["totalUnreadCount"] == 0
    past = inbox.client.patch(
        f"/v1/inbox/notifications/{message}/snooze",
        headers=headers,
        json={"snoozeUntil": ago(5).isoformat()},
    )
    assert past.status_code == 422
    inbox.client.patch(f"/v1/inbox/notifications/{message}/unsnooze", headers=headers)
    assert _ids(_list(inbox, headers)) == [message]


def test_delete_one(inbox: Inbox) -> None:
    message = inbox.put("ada")
    headers = inbox.headers("ada")
    route = f"/v1/inbox/notifications/{message}/delete"
    assert inbox.client.delete(route, headers=headers).status_code == 204
    assert inbox.client.delete(route, headers=headers).status_code == 404
    assert _ids(_list(inbox, headers)) == []


def test_primary_and_secondary_actions_complete_and_revert(inbox: Inbox) -> None:
    message = inbox.put("ada", actions=ACTIONS)
    plain = inbox.put("ada")
    headers = inbox.headers("ada")
    route = f"/v1/inbox/notifications/{message}"
    shown = _list(inbox, headers)["data"][1]
    assert shown["primaryAction"] == {
        "label": "Accept",
        "isCompleted": False,
        "redirect": {"url": "https://app.example.com/accept"},
    }
    assert shown["secondaryAction"] == {"label": "Decline", "isCompleted": False}
    done = inbox.client.patch(f"{route}/complete", headers=headers, json={"actionType": "primary"})
    assert done.json()["data"]["primaryAction"]["isCompleted"] is True
    other = inbox.client.patch(
        f"{route}/complete", headers=headers, json={"actionType": "secondary"}
    ).json()["data"]
    assert (other["primaryAction"]["isCompleted"], other["secondaryAction"]["isCompleted"]) == (
        False, True,
    )  # fmt: skip
    reverted = inbox.client.patch(
        f"{route}/revert", headers=headers, json={"actionType": "secondary"}
    )
    assert reverted.json()["data"]["secondaryAction"]["isCompleted"] is False
    none = inbox.client.patch(
        f"/v1/inbox/notifications/{plain}/complete", headers=headers, json={"actionType": "primary"}
    )
    assert none.status_code == 422


def test_the_subscriber_reads_and_changes_its_own_preferences(inbox: Inbox) -> None:
    inbox.workflow("digest")
    inbox.workflow("security", critical=True)
    headers = inbox.headers("ada")
    listed = inbox.client.get("/v1/inbox/preferences", headers=headers).json()["data"]
    assert [item["level"] for item in listed] == ["global", "template"]
    assert listed[1]["workflow"]["identifier"] == "digest"
    changed = inbox.client.patch(
        "/v1/inbox/preferences/digest", headers=headers, json={"email": False}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["workflow"]["identifier"] == "digest"
    assert changed.json()["data"]["enabled"] is True
    glob = inbox.client.patch("/v1/inbox/preferences", headers=headers, json={"sms": False})
    assert glob.json()["data"]["level"] == "global"
    assert glob.json()["data"]["channels"]["sms"] is False
    critical = inbox.client.patch(
        "/v1/inbox/preferences/security", headers=headers, json={"in_app": False}
    )
    assert critical.status_code == 422
    assert "workflowId" in critical.text
    bulk = inbox.client.patch(
        "/v1/inbox/preferences/bulk",
        headers=headers,
        json={"preferences": [{"workflowId": "digest", "in_app": False}]},
    )
    assert bulk.status_code == 200, bulk.text
    every = inbox.client.get(
        "/v1/inbox/preferences", headers=headers, params={"criticality": "all"}
    ).json()["data"]
    security = next(item for item in every if item["workflow"] and item["workflow"]["critical"])
    assert security["enabled"] is True


def test_every_route_of_the_inbox_is_under_v1_inbox() -> None:
    assert all(route.path.startswith("/v1/inbox/") for route in router.routes)  # type: ignore[attr-defined]
