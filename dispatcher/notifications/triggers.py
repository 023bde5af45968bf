"""Triggers: validate an event, write its notifications and deliveries (the outbox), then enqueue.

The rows are written in one transaction before any broker message is sent; the database is the
source of truth and the outbox sweeper re-enqueues whatever the broker loses. Single triggers of
one process share their transactions (:mod:`~dispatcher.notifications.group_commit`); a bulk
call is one transaction of its own. Either way the deliveries due at once travel in batches of
``delivery_batch_size`` per queue, not one message per event.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dispatcher.config import Settings, get_settings
from dispatcher.errors import TriggerError, field_errors
from dispatcher.notifications.enqueue import publish_due
from dispatcher.notifications.events import TriggerEvent
from dispatcher.notifications.group_commit import GroupCommitter, GroupRequest
from dispatcher.notifications.outbox import DueBatch
from dispatcher.notifications.writing import (
    Outcome,
    TriggerReceipt,
    check_sizes,
    check_workflow,
    write_events,
)
from dispatcher.runtime.resources import database

__all__ = [
    "TriggerReceipt",
    "check_workflow",
    "trigger",
    "trigger_async",
    "trigger_bulk",
    "trigger_event",
    "trigger_event_async",
    "write_event",
]


def trigger(
    organisation_id: uuid.UUID | str,
    workflow: str,
    to: Any,
    payload: dict[str, Any] | None = None,
    *,
    transaction_id: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    actor: dict[str, Any] | None = None,
) -> TriggerReceipt:
    """Notify ``to`` through ``workflow``; idempotent per (organisation, transaction_id).

    Safe to call from many threads at once: their events are committed together."""
    future = _submit(organisation_id, workflow, to, payload, transaction_id, overrides, actor)
    result: TriggerReceipt = future.result()
    return result


async def trigger_async(
    organisation_id: uuid.UUID | str,
    workflow: str,
    to: Any,
    payload: dict[str, Any] | None = None,
    *,
    transaction_id: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    actor: dict[str, Any] | None = None,
) -> TriggerReceipt:
    """:func:`trigger` for async code: awaits the group its event is committed in."""
    future = _submit(organisation_id, workflow, to, payload, transaction_id, overrides, actor)
    result: TriggerReceipt = await asyncio.wrap_future(future)
    return result


def trigger_event(
    organisation_id: uuid.UUID | str, event: dict[str, Any] | TriggerEvent
) -> TriggerReceipt:
    """:func:`trigger` for an event already in the shape of :func:`trigger_bulk`'s (the HTTP
    API's single trigger): committed with the concurrent single triggers of this process."""
    result: TriggerReceipt = _submit_event(organisation_id, event).result()
    return result


async def trigger_event_async(
    organisation_id: uuid.UUID | str, event: dict[str, Any] | TriggerEvent
) -> TriggerReceipt:
    """:func:`trigger_event` for async code (the HTTP API): the caller's event loop awaits the
    group, no thread waits for it."""
    result: TriggerReceipt = await asyncio.wrap_future(_submit_event(organisation_id, event))
    return result


def _submit_event(
    organisation_id: uuid.UUID | str, event: dict[str, Any] | TriggerEvent
) -> Future[Any]:
    settings = get_settings()
    organisation = _organisation(organisation_id)
    parsed = _parse(event, "")
    check_sizes(parsed, settings, "")
    return _committer.submit(GroupRequest(organisation, parsed, settings))


def trigger_bulk(
    organisation_id: uuid.UUID | str, events: Sequence[dict[str, Any] | TriggerEvent]
) -> list[TriggerReceipt]:
    """Many events in one transaction and few broker messages; one receipt per event. One
    refused event refuses the call, and nothing is written."""
    settings = get_settings()
    organisation = _organisation(organisation_id)
    if not isinstance(events, list | tuple):
        raise TriggerError([{"field": "events", "message": "must be a list of events"}])
    parsed = [_parse(event, _prefix(i, len(events))) for i, event in enumerate(events)]
    return _accept(organisation, parsed, settings)


def write_event(
    session: Session,
    organisation: uuid.UUID,
    event: TriggerEvent,
    settings: Settings,
    *,
    prefix: str = "",
    reserve: bool = True,
    continuing: bool = False,
) -> tuple[TriggerReceipt, DueBatch | None]:
    """Write one event's rows in ``session``; the caller commits and publishes the batch.

    With ``reserve=False`` nothing is reserved for an immediate broker message: the outbox
    sweeper sends the due deliveries (for callers that cannot publish after their commit).
    With ``continuing=True`` the event adds recipients to a transaction written in parts (a
    broadcast): the repeat check is the caller's, which leaves out subscribers already notified.
    """
    [outcome] = write_events(
        session,
        organisation,
        [event],
        settings,
        prefixes=[prefix],
        reserve=reserve,
        continuing=continuing,
    )
    if isinstance(outcome, TriggerError):
        raise outcome
    return outcome


def _submit(  # noqa: PLR0917 - the arguments of trigger, passed on
    organisation_id: uuid.UUID | str,
    workflow: str,
    to: Any,
    payload: dict[str, Any] | None,
    transaction_id: str | None,
    overrides: dict[str, dict[str, Any]] | None,
    actor: dict[str, Any] | None,
) -> Future[Any]:
    """Validate in the caller (a refused event never joins a group), then queue for commit."""
    settings = get_settings()
    organisation = _organisation(organisation_id)
    raw: dict[str, Any] = {
        "workflow": workflow,
        "to": to,
        "payload": {} if payload is None else payload,
    }
    if transaction_id is not None:
        raw["transaction_id"] = transaction_id
    if overrides is not None:
        raw["overrides"] = overrides
    if actor is not None:
        raw["actor"] = actor
    event = _parse(raw, "")
    check_sizes(event, settings, "")
    return _committer.submit(GroupRequest(organisation, event, settings))


def _write_group(group: list[GroupRequest]) -> Callable[[], None] | None:
    """One transaction for the whole group; returns what publishes its deliveries and answers
    each caller with its own outcome."""
    settings = group[0].settings
    by_organisation: dict[uuid.UUID, list[GroupRequest]] = {}
    for request in group:
        by_organisation.setdefault(request.organisation, []).append(request)
    settled: list[tuple[GroupRequest, Outcome]] = []
    try:
        with database().transaction() as session:
            for organisation, requests in by_organisation.items():
                events = [request.event for request in requests]
                outcomes = write_events(session, organisation, events, settings)
                settled += zip(requests, outcomes, strict=True)
    except Exception:  # each event again on its own, which answers its caller
        # A transaction id another process wrote meanwhile, a subscriber it created, or the
        # database itself: nothing of the group was written, so each event goes again on its
        # own, and each caller gets its own answer.
        for request in group:
            try:
                [receipt] = _accept(request.organisation, [request.event], settings)
            except Exception as exc:  # handed to the caller, who raises it
                request.future.set_exception(exc)
            else:
                request.future.set_result(receipt)
        return None

    def finish() -> None:
        for organisation in by_organisation:
            due = (
                outcome[1]
                for request, outcome in settled
                if request.organisation == organisation and not isinstance(outcome, TriggerError)
            )
            publish_due(organisation, _by_queue(due), settings)
        for request, outcome in settled:
            if isinstance(outcome, TriggerError):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome[0])

    return finish


_committer = GroupCommitter(_write_group)


def pending() -> int:
    """Single triggers of this process waiting for their group."""
    return _committer.pending()


def _accept(
    organisation: uuid.UUID, events: list[TriggerEvent], settings: Settings
) -> list[TriggerReceipt]:
    """Write ``events`` in one transaction, all or none, and publish what is due."""
    prefixes = [_prefix(position, len(events)) for position in range(len(events))]
    try:
        outcomes = _write_all(organisation, events, settings, prefixes)
    except IntegrityError:
        # A concurrent trigger with the same transaction id won the race: answer as a repeat.
        outcomes = _write_all(organisation, events, settings, prefixes)
    publish_due(organisation, _by_queue(due for _, due in outcomes), settings)
    return [receipt for receipt, _ in outcomes]


def _write_all(
    organisation: uuid.UUID, events: list[TriggerEvent], settings: Settings, prefixes: list[str]
) -> list[tuple[TriggerReceipt, DueBatch | None]]:
    written: list[tuple[TriggerReceipt, DueBatch | None]] = []
    with database().transaction() as session:
        for outcome in write_events(session, organisation, events, settings, prefixes=prefixes):
            if isinstance(outcome, TriggerError):
                raise outcome  # rolls the transaction back
            written.append(outcome)
    return written


def _by_queue(batches: Iterable[DueBatch | None]) -> list[DueBatch]:
    """The due deliveries of many events, one batch per queue: they are published in messages
    of ``delivery_batch_size`` each instead of one (or more) per event."""
    ids: dict[bool, list[uuid.UUID]] = {}
    pump: dict[bool, bool] = {}
    for batch in batches:
        if batch is None:
            continue
        ids.setdefault(batch.critical, []).extend(batch.ids)
        pump[batch.critical] = pump.get(batch.critical, False) or batch.pump
    return [DueBatch(critical, lane, pump=pump[critical]) for critical, lane in ids.items()]


def _organisation(value: uuid.UUID | str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise TriggerError([{"field": "organisation_id", "message": "not a UUID"}]) from None


def _prefix(position: int, total: int) -> str:
    return "" if total == 1 else f"events.{position}."


def _parse(event: dict[str, Any] | BaseModel, prefix: str) -> TriggerEvent:
    if isinstance(event, TriggerEvent):
        return event
    try:
        return TriggerEvent.model_validate(event)
    except ValidationError as exc:
        raise TriggerError(
            [{**item, "field": prefix + item["field"]} for item in field_errors(exc)]
        ) from None
