"""Helpers for the dispatcher tests: run an action on the worker, read rows back."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import select

from dispatcher import Ok, Result, enqueue_action
from dispatcher.results import from_wire
from dispatcher.runtime.resources import database
from dispatcher.tasks import action_task
from models import Base, Subscriber

RowT = TypeVar("RowT", bound=Base)


def on_worker(name: str, arguments: dict[str, Any], organisation_id: uuid.UUID) -> Result:
    """Through the producer API (validated here first), answered by the worker."""
    return enqueue_action(name, arguments, organisation_id=organisation_id).get(timeout=30)


def raw_on_worker(name: str, organisation_id: Any, arguments: Any, **options: Any) -> Result:
    """Straight onto the queue, skipping the producer's validation: what a buggy producer or a
    hand-written message would send."""
    async_result = action_task(name).apply_async(
        kwargs={"organisation_id": str(organisation_id), "arguments": arguments}, **options
    )
    return from_wire(async_result.get(timeout=30))


def created_id(result: Result) -> uuid.UUID:
    assert isinstance(result, Ok), result
    return uuid.UUID(result.value)


def fetch(model: type[RowT], row_id: uuid.UUID) -> RowT:
    with database().session() as session:
        row = session.scalars(select(model).where(model.__table__.c.id == row_id)).one()
        session.expunge(row)
        return row


def count(model: type[Base], **filters: Any) -> int:
    with database().session() as session:
        query = select(model)
        for column, value in filters.items():
            query = query.where(model.__table__.c[column] == value)
        return len(session.scalars(query).all())


def subscriber_row_id(organisation_id: uuid.UUID, external_id: str) -> uuid.UUID:
    """The row id of the subscriber the application calls ``external_id`` (for reading rows)."""
    with database().session() as session:
        return session.scalars(
            select(Subscriber.id).where(
                Subscriber.organisation_id == organisation_id,
                Subscriber.external_id == external_id,
            )
        ).one()
