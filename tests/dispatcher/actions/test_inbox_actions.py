"""The in-app inbox actions, in-process and through the real worker, on PostgreSQL."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

# Registers list_inbox and mark_inbox until dispatcher/actions/__init__.py imports the module.
from dispatcher import ActionArgumentsError, Err, Ok, run_action
from dispatcher.celery_app import app
from dispatcher.results import ErrorCode, Result
from dispatcher.runtime.resources import database
from dispatcher.tasks import action_task_name
from models import InboxMessage
from tests.dispatcher.support import fetch, on_worker, subscriber_row_id

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ITEM_KEYS = {"id", "title", "body", "data", "created_at", "seen_at", "read_at", "archived_at"}


@dataclass(frozen=True)
class Inbox:
    organisation_id: uuid.UUID
    #: The row's id, for writing messages.
    subscriber_id: uuid.UUID
    #: How the actions are told the subscriber: its external id.
    subscriber: str

    def add(self, body: str, minute: int, **fields: Any) -> uuid.UUID:
        """An inbox message created ``minute`` minutes after START."""
        with database().transaction() as session:
            message = InboxMessage(
                organisation_id=self.organisation_id,
                subscriber_id=self.subscriber_id,
                body=body,
                created_at=START + timedelta(minutes=minute),
                **fields,
            )
            session.add(message)
            session.flush()
            return message.id

    def list(self, **arguments: Any) -> list[dict[str, Any]]:
        result = self.run("list_inbox", **arguments)
        assert isinstance(result, Ok), result
        assert isinstance(result.value, list)
        return result.value

    def bodies(self, **arguments: Any) -> list[str]:
        return [item["body"] for item in self.list(**arguments)]

    def mark(self, message_ids: list[uuid.UUID], mark: str) -> Result:
        return self.run(
            "mark_inbox", message_ids=[str(item) for item in message_ids], **{"as": mark}
        )

    def run(self, action: str, **arguments: Any) -> Result:
        arguments = {"subscriber_id": self.subscriber, **arguments}
        return run_action(action, arguments, organisation_id=self.organisation_id)


def new_inbox(organisation_id: uuid.UUID, external_id: str = "reader") -> Inbox:
    created = run_action(
        "create_subscriber", {"external_id": external_id}, organisation_id=organisation_id
    )
    assert created == Ok(external_id), created
    return Inbox(organisation_id, subscriber_row_id(organisation_id, external_id), external_id)


@pytest.fixture
def inbox(organisation_id: uuid.UUID) -> Inbox:
    return new_inbox(organisation_id)


@pytest.fixture
def other_organisation_inbox(postgres_url: str) -> Inbox:
    from dispatcher.organisations import create_organisation

    return new_inbox(create_organisation(f"Other {uuid.uuid4().hex[:6]}"))


def test_list_is_newest_first_and_json_ready(inbox: Inbox) -> None:
    first = inbox.add("first", 1, title="Hello", data={"url": "/a"})
    inbox.add("third", 3)
    inbox.add("second", 2)
    items = inbox.list()
    assert [item["body"] for item in items] == ["third", "second", "first"]
    assert all(set(item) == ITEM_KEYS for item in items)
    assert items[2] == {
        "id": str(first),
        "title": "Hello",
        "body": "first",
        "data": {"url": "/a"},
        "created_at": (START + timedelta(minutes=1)).isoformat(),
        "seen_at": None,
        "read_at": None,
        "archived_at": None,
    }
    assert json.loads(json.dumps(items)) == items


def test_status_filters(inbox: Inbox) -> None:
    seen = START + timedelta(hours=1)
    inbox.add("fresh", 1)
    inbox.add("seen", 2, seen_at=seen)
    inbox.add("read", 3, seen_at=seen, read_at=seen)
    inbox.add("archived", 4, seen_at=seen, read_at=seen, archived_at=seen)
    inbox.add("archived unseen", 5, archived_at=seen)
    assert inbox.bodies() == ["read", "seen", "fresh"]
    assert inbox.bodies(status="unseen") == ["fresh"]
    assert inbox.bodies(status="unread") == ["seen", "fresh"]
    assert inbox.bodies(status="archived") == ["archived unseen", "archived"]
    assert inbox.bodies(status="all") == ["archived unseen", "archived", "read", "seen", "fresh"]


def test_pages_with_the_before_cursor(inbox: Inbox) -> None:
    for minute in range(1, 4):
        inbox.add(f"m{minute}", minute)
    # Two messages of the same instant still page without a gap or a repeat.
    inbox.add("m4a", 4)
    inbox.add("m4b", 4)
    pages: list[list[str]] = []
    before: str | None = None
    while True:
        extra = {} if before is None else {"before": before}
        items = inbox.list(limit=2, **extra)
        if not items:
            break
        pages.append([item["body"] for item in items])
        before = items[-1]["id"]
    flat = [body for page in pages for body in page]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(flat[:2]) == ["m4a", "m4b"]
    assert flat[2:] == ["m3", "m2", "m1"]


def test_list_arguments_are_checked(inbox: Inbox) -> None:
    for bad in ({"limit": 0}, {"limit": 101}, {"status": "unknown"}):
        with pytest.raises(ActionArgumentsError) as caught:
            inbox.run("list_inbox", **bad)
        assert next(iter(bad)) in str(caught.value)


def test_mark_read_implies_seen_and_counts_changes(inbox: Inbox) -> None:
    one, two = inbox.add("one", 1), inbox.add("two", 2)
    assert inbox.mark([one], "seen") == Ok(1)
    assert inbox.mark([one, two], "read") == Ok(2)
    assert inbox.mark([one, two], "read") == Ok(0)
    row = fetch(InboxMessage, two)
    assert row.read_at is not None and row.seen_at == row.read_at
    row = fetch(InboxMessage, one)
    seen_at, read_at = row.seen_at, row.read_at
    assert seen_at is not None and read_at is not None and seen_at < read_at

    assert inbox.mark([one, one], "unread") == Ok(1)
    row = fetch(InboxMessage, one)
    assert row.read_at is None and row.seen_at == seen_at
    assert inbox.bodies(status="unread") == ["one"]

    assert inbox.mark([two], "archived") == Ok(1)
    assert inbox.bodies() == ["one"]
    assert inbox.bodies(status="archived") == ["two"]
    assert inbox.mark([two], "unarchived") == Ok(1)
    assert inbox.bodies() == ["two", "one"]


def test_mark_arguments_are_checked(inbox: Inbox) -> None:
    message = inbox.add("one", 1)
    with pytest.raises(ActionArgumentsError) as caught:
        inbox.mark([message], "deleted")
    assert "as" in str(caught.value)
    with pytest.raises(ActionArgumentsError) as caught:
        inbox.mark([], "read")
    assert "message_ids" in str(caught.value)


def test_other_subscribers_and_organisations_are_refused(
    inbox: Inbox, other_organisation_inbox: Inbox
) -> None:
    mine = inbox.add("mine", 1)
    foreign = other_organisation_inbox.add("foreign", 1)
    neighbour = new_inbox(inbox.organisation_id, "neighbour")
    neighbours = neighbour.add("neighbour's", 1)

    # Another organisation's subscriber (by its row id or an external id only it has), or its
    # message.
    foreign_row = other_organisation_inbox.subscriber_id
    elsewhere_only = new_inbox(other_organisation_inbox.organisation_id, "elsewhere-only")
    for key in (str(foreign_row), elsewhere_only.subscriber):
        stranger = Inbox(inbox.organisation_id, foreign_row, key)
        for result in (stranger.run("list_inbox"), stranger.mark([mine], "read")):
            assert isinstance(result, Err) and result.code == ErrorCode.NOT_FOUND
            assert "subscriber_id" in result.message
            assert result.details["missing"] == [key]
    refused = inbox.mark([mine, foreign], "read")
    assert isinstance(refused, Err) and refused.code == ErrorCode.NOT_FOUND
    assert refused.details["missing"] == [str(foreign)]

    # Another subscriber's message in the same organisation: refused, and nothing changes.
    refused = inbox.mark([mine, neighbours], "read")
    assert isinstance(refused, Err) and refused.code == ErrorCode.NOT_FOUND
    assert refused.details == {
        "field": "message_ids",
        "table": "inbox_messages",
        "missing": [str(neighbours)],
    }
    assert fetch(InboxMessage, mine).read_at is None
    assert fetch(InboxMessage, neighbours).read_at is None
    cursor = inbox.run("list_inbox", before=str(neighbours))
    assert isinstance(cursor, Err) and cursor.details["field"] == "before"
    assert inbox.bodies() == ["mine"]
    assert neighbour.bodies() == ["neighbour's"]
    assert other_organisation_inbox.bodies() == ["foreign"]


@pytest.mark.usefixtures("worker")
def test_list_and_mark_on_the_worker(inbox: Inbox, other_organisation_inbox: Inbox) -> None:
    assert action_task_name("mark_inbox") in app.tasks, (
        "the inbox actions have no Celery task: dispatcher/actions/__init__.py must import inbox"
    )
    older, newer = inbox.add("older", 1), inbox.add("newer", 2)
    subscriber = inbox.subscriber
    marked = on_worker(
        "mark_inbox",
        {"subscriber_id": subscriber, "message_ids": [str(older)], "as": "read"},
        inbox.organisation_id,
    )
    assert marked == Ok(1)
    listed = on_worker(
        "list_inbox", {"subscriber_id": subscriber, "status": "unread"}, inbox.organisation_id
    )
    assert isinstance(listed, Ok) and [item["id"] for item in listed.value] == [str(newer)]
    refused = on_worker(
        "list_inbox",
        {"subscriber_id": str(other_organisation_inbox.subscriber_id)},
        inbox.organisation_id,
    )
    assert isinstance(refused, Err) and refused.code == ErrorCode.NOT_FOUND


def test_a_subscriber_is_named_by_its_external_id_or_else_its_row_id(inbox: Inbox) -> None:
    inbox.add("mine", 1)
    by_row_id = Inbox(inbox.organisation_id, inbox.subscriber_id, str(inbox.subscriber_id))
    assert by_row_id.bodies() == ["mine"]
    # An external id spelled like another subscriber's row id names its own subscriber.
    lookalike = new_inbox(inbox.organisation_id, str(inbox.subscriber_id))
    lookalike.add("lookalike's", 2)
    assert by_row_id.bodies() == ["lookalike's"]
    assert inbox.bodies() == ["mine"]
