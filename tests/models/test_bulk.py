"""``insert_many`` and ``update_many``: the PostgreSQL fast paths store exactly what the ordinary
statements store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher import create_organisation
from dispatcher.runtime.resources import database
from models import Delivery, DeliveryStatus, Notification, Subscriber, Workflow
from models.bulk import UNNEST_THRESHOLD, insert_many, update_many
from models.workflows import StepKind

pytestmark = pytest.mark.usefixtures("postgres_url")

COMPARED = (
    "organisation_id", "notification_id", "step_position", "step_kind", "channel_type",
    "critical", "status", "attempts", "next_attempt_at", "content", "meta", "created_at",
    "last_error", "provider", "sent_at",
)  # fmt: skip


def _parents(count: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """An organisation with ``count`` notifications to hang deliveries from."""
    organisation = create_organisation(f"Bulk {uuid.uuid4().hex[:6]}")
    workflow_id = uuid.uuid4()
    now = datetime.now(UTC)
    notification_ids = [uuid.uuid4() for _ in range(count)]
    with database().transaction() as session:
        session.add(Workflow(id=workflow_id, organisation_id=organisation, key="w", name="W"))
        subscriber = Subscriber(organisation_id=organisation, external_id="s")
        session.add(subscriber)
        session.flush()
        insert_many(
            session,
            Notification,
            [
                {
                    "id": item,
                    "organisation_id": organisation,
                    "transaction_id": f"t{number}",
                    "workflow_id": workflow_id,
                    "subscriber_id": subscriber.id,
                    "payload": {"n": number},
                    "actor": None,
                    "created_at": now,
                }
                for number, item in enumerate(notification_ids)
            ],
        )
    return organisation, notification_ids


def _rows(organisation: uuid.UUID, notifications: list[uuid.UUID]) -> list[dict[str, Any]]:
    created = datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    shared = {"one object": ["in", "every", "row"], "n": 1}
    for position, notification in enumerate(notifications):
        row: dict[str, Any] = {
            "organisation_id": organisation,
            "notification_id": notification,
            "step_position": 0,
            "step_kind": StepKind.EMAIL,
            "channel_type": "email",
            "critical": position % 2 == 0,
            "status": DeliveryStatus.QUEUED,
            "next_attempt_at": created + timedelta(seconds=position),
            "content": {"subject": "Grüße \\ \t tab", "nested": [1, None, {"a": "\n"}]},
            "meta": shared,
            "created_at": created,
        }
        if position % 3 == 0:
            # Keys missing from some rows: NULL, or the column's default.
            row["last_error"] = "collected into an open digest"
            row["attempts"] = 2
        rows.append(row)
    return rows


def _read(organisation: uuid.UUID) -> list[dict[str, Any]]:
    with database().session() as session:
        deliveries = session.scalars(
            sa.select(Delivery)
            .where(Delivery.organisation_id == organisation)
            .order_by(Delivery.next_attempt_at)
        ).all()
        return [{name: getattr(item, name) for name in ("id", "updated_at", *COMPARED)}
                for item in deliveries]  # fmt: skip


@pytest.mark.parametrize("count", [1, 3, 507])
def test_rows_read_back_as_given_with_defaults_filled(count: int) -> None:
    organisation, notifications = _parents(count)
    rows = _rows(organisation, notifications)
    with database().transaction() as session:
        insert_many(session, Delivery, rows)
    stored = _read(organisation)
    assert len(stored) == count
    for given, found in zip(rows, stored, strict=True):
        expected = {"attempts": 0, "last_error": None, "provider": None,
                    "sent_at": None, **given}  # fmt: skip
        assert {name: found[name] for name in COMPARED} == expected
        assert isinstance(found["id"], uuid.UUID)
        assert found["updated_at"] is not None
    assert len({item["id"] for item in stored}) == count


def test_copy_and_insert_store_the_same_thing() -> None:
    inserted_org, inserted_parents = _parents(2)
    copied_org, copied_parents = _parents(2)
    with database().transaction() as session:
        # The ordinary INSERT, what insert_many does on SQLite, against COPY.
        session.execute(sa.insert(Delivery), _rows(inserted_org, inserted_parents))
        insert_many(session, Delivery, _rows(copied_org, copied_parents))
    inserted, copied = _read(inserted_org), _read(copied_org)
    strip = ("id", "updated_at", "organisation_id", "notification_id")
    assert [{k: v for k, v in row.items() if k not in strip} for row in inserted] == [
        {k: v for k, v in row.items() if k not in strip} for row in copied
    ]


def test_a_copy_failing_a_constraint_writes_nothing() -> None:
    organisation, notifications = _parents(50)
    rows = _rows(organisation, notifications)
    rows[-1]["notification_id"] = uuid.uuid4()  # names no notification
    with pytest.raises(sa.exc.IntegrityError), database().transaction() as session:
        insert_many(session, Delivery, rows)
    assert _read(organisation) == []


def _changes(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Three kinds of change, each with its own column set, as a write-back makes them."""
    now = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    changes: list[dict[str, Any]] = []
    for position, row in enumerate(stored):
        change: dict[str, Any] = {"id": row["id"], "updated_at": now, "attempts": position}
        if position % 3 == 0:
            change.update(status=DeliveryStatus.SENT, sent_at=now, last_error=None,
                          provider="fake_http", content={"to": "a@example.com", "n": position})  # fmt: skip
        elif position % 3 == 1:
            change.update(status=DeliveryStatus.RETRYING, last_error="HTTP 500 \\ 'quoted'",
                          next_attempt_at=now + timedelta(seconds=position))  # fmt: skip
        else:
            change.update(status=DeliveryStatus.FAILED, next_attempt_at=None, content={})
        changes.append(change)
    return changes


def test_update_by_arrays_matches_the_ordinary_update() -> None:
    count = UNNEST_THRESHOLD + 10
    ordinary, fast = _parents(count), _parents(count)
    with database().transaction() as session:
        for organisation, notifications in (ordinary, fast):
            insert_many(session, Delivery, _rows(organisation, notifications))
    before, ordinary_changes = _read(fast[0]), _changes(_read(ordinary[0]))
    with database().transaction() as session:
        # Below the threshold: the ordinary UPDATE, in slices of a few rows.
        step = UNNEST_THRESHOLD - 1
        for start in range(0, count, step):
            update_many(session, Delivery, ordinary_changes[start : start + step])
        update_many(session, Delivery, _changes(before))
    strip = ("id", "organisation_id", "notification_id")

    def by_position(organisation: uuid.UUID) -> list[dict[str, Any]]:
        return sorted(_read(organisation), key=lambda row: int(row["attempts"]))

    expected = [
        {k: v for k, v in row.items() if k not in strip} for row in by_position(ordinary[0])
    ]
    found = by_position(fast[0])
    assert [{k: v for k, v in row.items() if k not in strip} for row in found] == expected
    assert [row["status"] for row in found[:3]] == [
        DeliveryStatus.SENT,
        DeliveryStatus.RETRYING,
        DeliveryStatus.FAILED,
    ]
    # Columns a change does not name keep their values.
    assert found[1]["content"] == before[1]["content"]
    assert (
        found[0]["last_error"] is None
        and found[3]["next_attempt_at"] == before[3]["next_attempt_at"]
    )
