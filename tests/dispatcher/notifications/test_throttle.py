"""Throttle steps: counted when triggers are written, exactly ``limit`` across processes."""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from dispatcher import TriggerError, run_action, trigger
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.errors import ActionArgumentsError
from dispatcher.runtime.resources import database
from dispatcher.tasks.maintenance import purge
from models import Delivery, DeliveryStatus, Notification, NotificationStatus, ThrottleWindow
from models.types import utcnow
from tests.dispatcher.notify_support import (
    EMAIL_STEP,
    subscriber,
    wait_until_terminal,
    wire,
    workflow,
)

PROCESSES = 4
THREADS = 6


def throttle(limit: int, window: float = 3600, key: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"limit": limit, "window": window}
    if key is not None:
        config["key"] = key
    return {"kind": "throttle", "config": config}


def statuses(org: uuid.UUID) -> list[tuple[str, DeliveryStatus, str | None]]:
    with database().session() as session:
        rows = session.execute(
            select(Notification.transaction_id, Delivery.status, Delivery.last_error)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(Delivery.organisation_id == org)
            .order_by(Notification.created_at)
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def _racer(org: str, barrier: Any, prefix: str) -> None:
    barrier.wait()
    with ThreadPoolExecutor(THREADS) as pool:
        list(
            pool.map(
                lambda i: trigger(org, "limited", "ada", {"code": "1"},
                                  transaction_id=f"{prefix}-{i}"),
                range(THREADS),
            )
        )  # fmt: skip


def test_racing_triggers_from_four_processes_let_exactly_the_limit_through(
    organisation_id: uuid.UUID,
) -> None:
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "limited", [throttle(5), EMAIL_STEP])
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    racers = [
        context.Process(target=_racer, args=(str(organisation_id), barrier, f"p{n}"))
        for n in range(PROCESSES)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(120)
        assert racer.exitcode == 0
    rows = statuses(organisation_id)
    assert len(rows) == PROCESSES * THREADS
    passed = [row for row in rows if row[1] is not DeliveryStatus.SKIPPED]
    assert len(passed) == 5
    assert {row[2] for row in rows if row[1] is DeliveryStatus.SKIPPED} == {"throttled"}


def test_keys_are_counted_apart_and_a_window_past_its_end_starts_again(
    organisation_id: uuid.UUID,
) -> None:
    subscriber(organisation_id, "ada")
    subscriber(organisation_id, "bo")
    workflow(organisation_id, "orders", [throttle(1, key="{{ payload.orderId }}"), EMAIL_STEP])
    fire = lambda tx, order, to="ada": trigger(  # noqa: E731
        organisation_id, "orders", to, {"orderId": order, "code": "1"}, transaction_id=tx
    )
    fire("a1", "o-1")
    fire("a2", "o-1")
    fire("a3", "o-2")
    fire("b1", "o-1", "bo")
    with database().session() as session, session.begin():
        # The window opened an hour and a second ago: the next notification opens a new one.
        session.execute(
            update(ThrottleWindow)
            .where(ThrottleWindow.organisation_id == organisation_id, ThrottleWindow.key == "o-1")
            .values(window_start=utcnow() - timedelta(seconds=3601))
        )
    fire("a4", "o-1")
    fire("a5", "o-1")
    # A worker of the session may have sent the passed ones meanwhile: only skipped is asserted.
    assert [
        (tx, error if status is DeliveryStatus.SKIPPED else "passed")
        for tx, status, error in statuses(organisation_id)
    ] == [("a1", "passed"), ("a2", "throttled"), ("a3", "passed"), ("b1", "passed"),
          ("a4", "passed"), ("a5", "throttled")]  # fmt: skip
    with database().session() as session:
        finished = session.scalar(
            select(Notification.status).where(
                Notification.organisation_id == organisation_id,
                Notification.transaction_id == "a2",
            )
        )
    assert finished is NotificationStatus.COMPLETED


def test_a_key_needs_its_payload_field_and_nothing_is_counted_for_a_refused_trigger(
    organisation_id: uuid.UUID,
) -> None:
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "orders", [throttle(1, key="{{ payload.orderId }}"), EMAIL_STEP])
    with pytest.raises(TriggerError) as refused:
        trigger(organisation_id, "orders", "ada", {"code": "1"})
    assert refused.value.errors == [
        {"field": "payload.orderId", "message": "required by the throttle key of step 0"}
    ]
    with database().session() as session:
        assert (
            session.scalars(
                select(ThrottleWindow).where(ThrottleWindow.organisation_id == organisation_id)
            ).all()
            == []
        )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"window": 60}, "config.limit: Field required"),
        ({"limit": 0, "window": 60}, "config.limit: Input should be greater than or equal to 1"),
        ({"limit": 1}, "config.window: Field required"),
        ({"limit": 1, "window": 60, "key": "{{ payload.x"}, "config.key: template syntax error"),
        ({"limit": 1, "window": 60, "per": "x"}, "config.per: Extra inputs are not permitted"),
    ],
)
def test_a_bad_throttle_config_is_refused_naming_the_field(
    organisation_id: uuid.UUID, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ActionArgumentsError) as refused:
        run_action(
            "create_workflow",
            {"key": "t", "name": "t",
             "steps": [{"kind": "throttle", "config": config}, EMAIL_STEP]},
            organisation_id=organisation_id,
        )  # fmt: skip
    assert message in str(refused.value)


@pytest.mark.usefixtures("worker")
def test_end_to_end_the_first_is_sent_and_the_second_shows_throttled(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ada", first_name="Ada")
    workflow(organisation_id, "code", [throttle(1), EMAIL_STEP])
    first = trigger(organisation_id, "code", "ada", {"code": "1"})
    second = trigger(organisation_id, "code", "ada", {"code": "2"})
    [sent] = wait_until_terminal(organisation_id, first.transaction_id)
    [skipped] = wait_until_terminal(organisation_id, second.transaction_id)
    assert (sent.status, skipped.status, skipped.last_error) == ("sent", "skipped", "throttled")


def test_retention_deletes_the_counters_of_ended_windows_only(
    organisation_id: uuid.UUID,
) -> None:
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "orders", [throttle(1, window=60, key="{{ payload.orderId }}"),
                                         EMAIL_STEP])  # fmt: skip
    for order in ("ended", "open"):
        trigger(organisation_id, "orders", "ada", {"orderId": order, "code": "1"},
                transaction_id=f"first-{order}")  # fmt: skip
    with database().session() as session, session.begin():
        session.execute(
            update(ThrottleWindow)
            .where(ThrottleWindow.organisation_id == organisation_id,
                   ThrottleWindow.key == "ended")
            .values(window_start=utcnow() - timedelta(seconds=61))
        )  # fmt: skip

    report = purge()

    assert report.throttle_windows >= 1
    with database().session() as session:
        left = session.scalars(
            select(ThrottleWindow.key).where(ThrottleWindow.organisation_id == organisation_id)
        ).all()
    assert left == ["open"]
    # The deleted counter was worth nothing: the next "ended" passes, the next "open" does not.
    for order in ("ended", "open"):
        trigger(organisation_id, "orders", "ada", {"orderId": order, "code": "1"},
                transaction_id=f"second-{order}")  # fmt: skip
    skipped = {
        tx for tx, status, _ in statuses(organisation_id) if status is DeliveryStatus.SKIPPED
    }
    assert skipped == {"second-open"}


def test_overflow_folds_into_one_digest_sent_when_the_window_ends(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ada")
    subscriber(organisation_id, "bo")
    email = {"kind": "email", "template": {
        "subject": "{{ digest.count if digest is defined else 1 }} comments",
        "body": "{% if digest is defined %}{% for e in digest.events %}{{ e.text }};{% endfor %}"
                "{% else %}{{ payload.text }}{% endif %}",
    }}  # fmt: skip
    workflow(organisation_id, "comments",
             [{"kind": "throttle", "config": {"limit": 1, "window": 3, "overflow": "digest"}},
              email])  # fmt: skip
    fire = lambda text, to="ada": trigger(  # noqa: E731
        organisation_id, "comments", to, {"text": text}, transaction_id=f"{to}-{text}"
    )
    first, second, third, fourth = (fire(f"c{i}") for i in range(4))
    alone = fire("b0", "bo")
    leader = fetch_delivery(second.transaction_id)
    window = fetch_window(organisation_id, "ada")
    # The leader waits for the window's end in the database; no worker holds it.
    assert leader.status is DeliveryStatus.QUEUED
    assert leader.next_attempt_at == window + timedelta(seconds=3)

    views = {r.transaction_id: wait_until_terminal(organisation_id, r.transaction_id)[0]
             for r in (first, second, third, fourth, alone)}  # fmt: skip

    assert [views[r.transaction_id].status for r in (first, second, third, fourth)] == [
        "sent", "sent", "skipped", "skipped"]  # fmt: skip
    assert views[third.transaction_id].last_error == "collected into an open digest"
    assert fetch_delivery(first.transaction_id).content["body"] == "c0"
    assert fetch_delivery(second.transaction_id).content == {
        "subject": "3 comments", "body": "c1;c2;c3;"}  # fmt: skip
    # Another subscriber's own window: under its limit, sent at once on its own.
    assert fetch_delivery(alone.transaction_id).content["body"] == "b0"


def test_a_folding_throttle_is_the_workflows_only_way_of_collecting(
    organisation_id: uuid.UUID,
) -> None:
    folding = {"kind": "throttle", "config": {"limit": 1, "window": 60, "overflow": "digest"}}
    with pytest.raises(ActionArgumentsError) as refused:
        run_action(
            "create_workflow",
            {"key": "both", "name": "both",
             "steps": [folding, {"kind": "digest", "config": {"window_seconds": 5}}, EMAIL_STEP]},
            organisation_id=organisation_id,
        )  # fmt: skip
    assert "steps.0.config.overflow: a throttle folding its overflow" in str(refused.value)
    with pytest.raises(ActionArgumentsError) as bad:
        run_action(
            "create_workflow",
            {"key": "bad", "name": "bad",
             "steps": [{"kind": "throttle", "config": {"limit": 1, "window": 60,
                                                       "overflow": "queue"}}, EMAIL_STEP]},
            organisation_id=organisation_id,
        )  # fmt: skip
    assert "config.overflow" in str(bad.value)


def fetch_delivery(transaction_id: str) -> Delivery:
    with database().session() as session:
        delivery = session.scalars(
            select(Delivery)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(Notification.transaction_id == transaction_id)
        ).one()
        session.expunge(delivery)
    return delivery


def fetch_window(organisation_id: uuid.UUID, external_id: str) -> Any:
    with database().session() as session:
        return session.scalar(
            select(ThrottleWindow.window_start)
            .where(ThrottleWindow.organisation_id == organisation_id)
            .order_by(ThrottleWindow.window_start)
        )
