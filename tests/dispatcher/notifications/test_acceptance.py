"""Cheap acceptance: concurrent single triggers share transactions and each caller still gets its
own receipt or error; a bulk call publishes a handful of messages, not one per event. Real
PostgreSQL and Redis; delivery messages go to queues no worker reads, so they are counted here,
in a database no sweeper of the session's worker reserves from."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, insert, select, text

from dispatcher import TriggerError, TriggerReceipt, trigger, trigger_async, trigger_bulk
from dispatcher.config import Settings, get_settings, reset_settings
from dispatcher.notifications import group_commit, triggers
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import Delivery, Notification
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, workflow

pytestmark = pytest.mark.usefixtures("sweeper_free_database")

CALLERS = 200
SUBSCRIBERS = 10


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[Settings]:
    """Both delivery queues are this test's own, and nothing consumes them."""
    suffix = uuid.uuid4().hex[:8]
    queues = (f"accept-deliveries-{suffix}", f"accept-critical-{suffix}")
    monkeypatch.setenv("DISPATCHER_DELIVERY_QUEUE", queues[0])
    monkeypatch.setenv("DISPATCHER_CRITICAL_QUEUE", queues[1])
    reset_settings()
    yield get_settings()
    monkeypatch.undo()
    reset_settings()
    client = redis.Redis.from_url(redis_url)
    client.delete(*queues)
    client.close()


def envelopes(settings: Settings, queue: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(settings.resolved_broker_url)
    try:
        raw_messages = client.lrange(queue, 0, -1)
    finally:
        client.close()
    return [json.loads(raw) for raw in raw_messages]


def published(settings: Settings, queue: str) -> list[list[str]]:
    """The delivery ids of every message waiting on ``queue``, one list per message."""
    batches = []
    for envelope in envelopes(settings, queue):
        _, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
        batches.append(kwargs["delivery_ids"])
    return batches


def organisation_with_subscribers(count: int = SUBSCRIBERS) -> uuid.UUID:
    organisation_id = create_organisation(f"Accept {uuid.uuid4().hex[:6]}")
    workflow(organisation_id, "code", [EMAIL_STEP])
    for index in range(count):
        subscriber(organisation_id, f"s{index}")
    return organisation_id


def notifications_by_transaction(organisation_id: uuid.UUID) -> dict[str, list[str]]:
    with database().session() as session:
        rows = session.execute(
            select(Notification.transaction_id, Notification.id).where(
                Notification.organisation_id == organisation_id
            )
        ).all()
    found: dict[str, list[str]] = {}
    for transaction_id, notification_id in rows:
        found.setdefault(transaction_id, []).append(str(notification_id))
    return found


def call(index: int, organisation_id: uuid.UUID) -> tuple[str, dict[str, Any]]:
    """What caller ``index`` sends: (kind, trigger arguments). Every tenth is refused by the
    database's answers (unknown subscriber), every tenth by its templates (no ``code``), every
    tenth before any database work (a NUL in the payload); callers 10k+1 and 10k+2 send the
    same transaction id; the others a transaction id of their own."""
    target = f"s{index % SUBSCRIBERS}"
    arguments: dict[str, Any] = {"to": target, "payload": {"code": str(index)}}
    kind = {0: "unknown", 5: "missing", 7: "unstorable"}.get(index % 10, "valid")
    if kind == "unknown":
        arguments["to"] = "nobody"
    elif kind == "missing":
        arguments["payload"] = {"other": "x"}
    elif kind == "unstorable":
        arguments["payload"] = {"code": "a\x00b"}
    if index % 10 in {1, 2}:
        arguments.update(transaction_id=f"pair-{index // 10}", to="s1")
        kind = "pair"
    else:
        arguments["transaction_id"] = f"own-{index}"
    return kind, arguments


def test_concurrent_triggers_each_get_their_own_receipt_or_error(settings: Settings) -> None:
    organisation_id = organisation_with_subscribers()
    start = threading.Barrier(CALLERS)
    answers: dict[int, TriggerReceipt | TriggerError] = {}

    def caller(index: int) -> None:
        _, arguments = call(index, organisation_id)
        start.wait()
        try:
            answers[index] = trigger(organisation_id, "code", **arguments)
        except TriggerError as exc:
            answers[index] = exc

    threads = [threading.Thread(target=caller, args=(index,)) for index in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    written = notifications_by_transaction(organisation_id)
    expected_fields = {"unknown": "to.0", "missing": "payload.code", "unstorable": "payload"}
    pairs: dict[str, list[TriggerReceipt]] = {}
    for index in range(CALLERS):
        kind, arguments = call(index, organisation_id)
        answer = answers[index]
        if kind in expected_fields:
            assert isinstance(answer, TriggerError), (index, answer)
            assert [error["field"] for error in answer.errors] == [expected_fields[kind]]
            assert arguments["transaction_id"] not in written
            continue
        assert isinstance(answer, TriggerReceipt), (index, answer)
        assert answer.transaction_id == arguments["transaction_id"]
        if kind == "pair":
            pairs.setdefault(answer.transaction_id, []).append(answer)
            continue
        assert not answer.duplicate
        assert (answer.deliveries, answer.notification_ids) == (1, written[answer.transaction_id])
    for transaction_id, receipts in pairs.items():
        # The same transaction id twice, whether in one group or two: written once, and the
        # second caller is told so, with the first's notification.
        first, second = sorted(receipts, key=lambda receipt: receipt.duplicate)
        assert (first.duplicate, second.duplicate) == (False, True)
        assert first.notification_ids == second.notification_ids == written[transaction_id]
    valid = [index for index in range(CALLERS) if call(index, organisation_id)[0] == "valid"]
    assert len(written) == len(valid) + len(pairs)
    assert all(len(ids) == 1 for ids in written.values())
    # Every delivery written is in exactly one message.
    ids = [item for batch in published(settings, settings.delivery_queue) for item in batch]
    with database().session() as session:
        delivery_ids = session.scalars(
            select(Delivery.id).where(Delivery.organisation_id == organisation_id)
        ).all()
    assert sorted(ids) == sorted(str(item) for item in delivery_ids)
    assert len(ids) == len(written)


def test_a_group_the_database_refuses_is_written_again_event_by_event(
    settings: Settings, sweeper_free_database: str
) -> None:
    """Another process commits a transaction id while a group holding it waits to insert: the
    group fails as a whole (a unique violation), and each of its events is written again on its
    own: the repeat is answered as a duplicate, the others are written."""
    organisation_id = organisation_with_subscribers()
    other_process = create_engine(sweeper_free_database)
    answers: dict[str, TriggerReceipt | BaseException] = {}

    def caller(transaction_id: str) -> None:
        try:
            answers[transaction_id] = trigger(
                organisation_id, "code", "s1", {"code": "1"}, transaction_id=transaction_id
            )
        except Exception as exc:  # asserted below
            answers[transaction_id] = exc

    def started(transaction_id: str) -> threading.Thread:
        thread = threading.Thread(target=caller, args=(transaction_id,))
        thread.start()
        return thread

    # One held row per writer keeps every writer waiting; then one more for the group.
    holds = [f"hold-{number}" for number in range(group_commit.WRITERS)]
    names = [*holds, "race"]
    blockers = [other_process.connect() for _ in names]
    their_ids = {name: uuid.uuid4() for name in names}
    try:
        # Uncommitted rows of the other process: a group inserting the same transaction id
        # waits for it on the unique index.
        subscriber_id = subscriber_row(organisation_id, "s1")
        workflow_id = workflow_row(organisation_id, "code")
        for name, connection in zip(names, blockers, strict=True):
            connection.execute(
                insert(Notification).values(
                    id=their_ids[name], organisation_id=organisation_id, transaction_id=name,
                    workflow_id=workflow_id, subscriber_id=subscriber_id, payload={},
                )
            )  # fmt: skip
        threads = []
        for number, name in enumerate(holds, start=1):
            # One at a time, so that each is a group of its own, held up in a writer of its own.
            threads.append(started(name))
            wait_for(lambda number=number: waiting_on_locks(other_process) == number)  # type: ignore[misc]
        # Every writer waits: these queue up and form the next group together.
        threads += [started(name) for name in ("race", "a", "b", "c")]
        wait_for(lambda: triggers.pending() == 4)
        for connection in blockers[:-1]:
            connection.commit()
        wait_for(
            lambda: waiting_on_locks(other_process) == 1 and all(name in answers for name in holds)
        )
        blockers[-1].commit()
        for thread in threads:
            thread.join()
    finally:
        for connection in blockers:
            connection.close()
        other_process.dispose()

    for name in names:
        receipt = answers[name]
        assert isinstance(receipt, TriggerReceipt), receipt
        assert receipt.duplicate
        assert receipt.notification_ids == [str(their_ids[name])]
    written = notifications_by_transaction(organisation_id)
    for name in ("a", "b", "c"):
        receipt = answers[name]
        assert isinstance(receipt, TriggerReceipt), receipt
        assert not receipt.duplicate
        assert receipt.notification_ids == written[name]
    assert len(written) == len(names) + 3


def test_async_triggers_await_their_group(settings: Settings) -> None:
    organisation_id = organisation_with_subscribers()

    async def many() -> list[TriggerReceipt]:
        return await asyncio.gather(
            *(
                trigger_async(
                    organisation_id,
                    "code",
                    f"s{index % SUBSCRIBERS}",
                    {"code": str(index)},
                    transaction_id=f"async-{index}",
                )
                for index in range(50)
            )
        )

    receipts = asyncio.run(many())
    written = notifications_by_transaction(organisation_id)
    assert [receipt.transaction_id for receipt in receipts] == [f"async-{i}" for i in range(50)]
    for receipt in receipts:
        assert receipt.notification_ids == written[receipt.transaction_id]


@pytest.mark.parametrize(("normal", "critical"), [(230, 40), (2000, 1)])
def test_a_bulk_call_publishes_a_handful_of_messages(
    settings: Settings, normal: int, critical: int
) -> None:
    organisation_id = organisation_with_subscribers(20)
    workflow(organisation_id, "alarm", [EMAIL_STEP], critical=True)
    events = [
        {"workflow": "code", "to": f"s{index % 20}", "payload": {"code": str(index)}}
        for index in range(normal)
    ] + [{"workflow": "alarm", "to": "s0", "payload": {"code": "!"}} for _ in range(critical)]
    receipts = trigger_bulk(organisation_id, events)

    size = settings.delivery_batch_size
    lanes = {settings.delivery_queue: normal, settings.critical_queue: critical}
    with database().session() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.critical).where(
                Delivery.organisation_id == organisation_id
            )
        ).all()
    for queue, events_in_lane in lanes.items():
        batches = published(settings, queue)
        assert len(batches) <= math.ceil(events_in_lane / size)
        assert all(len(batch) <= size for batch in batches)
        ids = [item for batch in batches for item in batch]
        in_lane = [
            str(row.id) for row in rows if row.critical is (queue == settings.critical_queue)
        ]
        assert sorted(ids) == sorted(in_lane)
        assert len(in_lane) == events_in_lane
        # What Flower shows of each message: its size and first id, not 200 ids.
        assert [envelope["headers"]["kwargsrepr"] for envelope in envelopes(settings, queue)] == [
            f"{{'delivery_ids': <{len(batch)} ids, first {batch[0]}>}}" for batch in batches
        ]
    assert Counter(receipt.deliveries for receipt in receipts) == {1: normal + critical}


def test_a_bulk_call_with_one_refused_event_writes_nothing(settings: Settings) -> None:
    organisation_id = organisation_with_subscribers(2)
    events = [
        {"workflow": "code", "to": "s0", "payload": {"code": "1"}},
        {"workflow": "code", "to": "s1", "payload": {}},
    ]
    with pytest.raises(TriggerError) as refused:
        trigger_bulk(organisation_id, events)
    assert [error["field"] for error in refused.value.errors] == ["events.1.payload.code"]
    assert notifications_by_transaction(organisation_id) == {}
    assert published(settings, settings.delivery_queue) == []


def test_the_same_transaction_id_twice_in_one_bulk_call_is_written_once(
    settings: Settings,
) -> None:
    organisation_id = organisation_with_subscribers(2)
    first, second = trigger_bulk(
        organisation_id,
        [
            {"workflow": "code", "to": "s0", "payload": {"code": "1"}, "transaction_id": "t"},
            {"workflow": "code", "to": "s1", "payload": {"code": "2"}, "transaction_id": "t"},
        ],
    )
    assert (first.duplicate, second.duplicate) == (False, True)
    assert (
        first.notification_ids
        == second.notification_ids
        == notifications_by_transaction(organisation_id)["t"]
    )


def subscriber_row(organisation_id: uuid.UUID, external_id: str) -> uuid.UUID:
    from models import Subscriber

    with database().session() as session:
        found = session.scalar(
            select(Subscriber.id).where(
                Subscriber.organisation_id == organisation_id,
                Subscriber.external_id == external_id,
            )
        )
    assert found is not None
    return found


def workflow_row(organisation_id: uuid.UUID, key: str) -> uuid.UUID:
    from models import Workflow

    with database().session() as session:
        found = session.scalar(
            select(Workflow.id).where(
                Workflow.organisation_id == organisation_id, Workflow.key == key
            )
        )
    assert found is not None
    return found


def waiting_on_locks(engine: Any) -> int:
    """Backends of this database waiting for a lock another transaction holds."""
    with engine.connect() as connection:
        return int(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )


def wait_for(condition: Callable[[], bool], attempts: int = 600) -> None:
    """Poll ``condition`` (a state the test steers towards, not a timing) every 50 ms."""
    import time

    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the condition never held")
