"""Beat jobs against PostgreSQL: scheduled triggers, retention, and the circuit probe.

Scheduled-trigger tests drive :func:`fire_due` with an explicit ``now`` at due times in the
future, so the session's own beat process never sees them due; the end-to-end test at the end
runs the real Celery task on the worker.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy import select, update

from dispatcher import run_action
from dispatcher.celery_app import app
from dispatcher.config import get_settings
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.lifecycle.webhooks import create as create_endpoint
from dispatcher.notifications.scheduling import (
    DueSchedule,
    FireReport,
    fire,
    fire_due,
    transaction_id,
)
from dispatcher.runtime.resources import database
from dispatcher.sending.batch import circuit_store
from dispatcher.sending.circuit import FAILURES_PREFIX
from dispatcher.sending.probe import probe
from dispatcher.tasks.maintenance import FIRE_TASK, purge
from models import (
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    InboxMessage,
    Integration,
    IntegrationStatus,
    Notification,
    Schedule,
    StepKind,
    Subscriber,
    WebhookEvent,
    WebhookEventAttempt,
    WebhookEventStatus,
    WebhookEventType,
)
from models.types import utcnow
from tests.conftest import free_port
from tests.dispatcher.notify_support import (
    EMAIL_STEP,
    act,
    subscriber,
    wait_until_terminal,
    wire,
    workflow,
)
from tests.dispatcher.support import count, fetch

pytestmark = pytest.mark.usefixtures("redis_url")

LONDON = ZoneInfo("Europe/London")


# --- scheduled triggers -------------------------------------------------------------------------


def make_schedule(org: uuid.UUID, **fields: Any) -> uuid.UUID:
    arguments = {"workflow": "code", "cron": "0 9 * * *", "to": ["ada"], **fields}
    return act(org, "create_schedule", arguments)


def set_due(schedule_id: uuid.UUID, when: datetime) -> None:
    with database().transaction() as session:
        session.execute(
            update(Schedule).where(Schedule.id == schedule_id).values(next_fire_at=when)
        )


def notified(org: uuid.UUID, transaction: str) -> list[uuid.UUID]:
    with database().session() as session:
        return list(
            session.scalars(
                select(Notification.subscriber_id).where(
                    Notification.organisation_id == org, Notification.transaction_id == transaction
                )
            )
        )


def _subscriber_id(org: uuid.UUID, external_id: str) -> uuid.UUID:
    with database().session() as session:
        found = session.scalar(
            select(Subscriber.id).where(
                Subscriber.organisation_id == org, Subscriber.external_id == external_id
            )
        )
    assert found is not None
    return found


def future_nine_utc(days: int = 400) -> datetime:
    """09:00 UTC on a day far enough ahead that nothing else fires it."""
    return (utcnow() + timedelta(days=days)).replace(hour=9, minute=0, second=0, microsecond=0)


@pytest.fixture
def code_workflow(organisation_id: uuid.UUID) -> uuid.UUID:
    subscriber(organisation_id, "ada", first_name="Ada")
    subscriber(organisation_id, "bo", first_name="Bo")
    workflow(organisation_id, "code", [EMAIL_STEP])
    return organisation_id


def test_a_due_schedule_fires_and_moves_to_its_next_time(code_workflow: uuid.UUID) -> None:
    org = code_workflow
    schedule_id = make_schedule(org, to=["ada", "bo"], payload={"code": "42"})
    due = future_nine_utc()
    set_due(schedule_id, due)
    now = due + timedelta(seconds=30)
    fire_due(now=now)
    assert sorted(notified(org, transaction_id(schedule_id, due))) == sorted(
        [_subscriber_id(org, "ada"), _subscriber_id(org, "bo")]
    )
    schedule = fetch(Schedule, schedule_id)
    assert schedule.next_fire_at == due + timedelta(days=1)
    assert (schedule.last_fired_at, schedule.last_error, schedule.active) == (now, None, True)
    with database().session() as session:
        payloads = session.scalars(
            select(Notification.payload).where(
                Notification.transaction_id == transaction_id(schedule_id, due)
            )
        ).all()
    assert payloads == [{"code": "42"}, {"code": "42"}]


def test_the_transaction_id_names_the_schedule_and_the_due_time() -> None:
    schedule_id = uuid.UUID(int=1)
    due = datetime.fromisoformat("2027-03-28T08:00:00+00:00")
    expected = "schedule:00000000-0000-0000-0000-000000000001:2027-03-28T08:00:00+00:00"
    assert transaction_id(schedule_id, due) == expected
    assert transaction_id(schedule_id, due.astimezone(LONDON)) == expected


def test_two_runs_that_read_the_same_due_time_send_it_once(code_workflow: uuid.UUID) -> None:
    org = code_workflow
    schedule_id = make_schedule(org, to=["ada", "bo"], payload={"code": "1"})
    due = future_nine_utc()
    set_due(schedule_id, due)
    row = fetch(Schedule, schedule_id)
    # What two beat processes both read before either had moved the schedule on.
    snapshot = DueSchedule(
        row.id, row.organisation_id, row.workflow_key, row.cron, row.timezone, row.to,
        row.payload, due,
    )  # fmt: skip
    now = due + timedelta(seconds=5)
    first, second = FireReport(), FireReport()
    fire(snapshot, now, first)
    fire(snapshot, now + timedelta(seconds=1), second)
    assert (first.fired, first.repeated) == (1, 0)
    assert (second.fired, second.repeated) == (0, 1)
    assert len(notified(org, transaction_id(schedule_id, due))) == 2
    assert count(Notification, organisation_id=org) == 2
    # The late run does not move the schedule a second time.
    schedule = fetch(Schedule, schedule_id)
    assert (schedule.next_fire_at, schedule.last_fired_at) == (due + timedelta(days=1), now)


def test_concurrent_fire_runs_send_each_due_time_once(code_workflow: uuid.UUID) -> None:
    org = code_workflow
    schedule_id = make_schedule(
        org,
        to=["ada", {"subscriber_id": "cy", "email": "cy@example.com"}, {"topic": "team"}],
        payload={"code": "2"},
    )
    act(org, "create_topic", {"key": "team", "name": "Team",
                              "subscriber_ids": [str(_subscriber_id(org, "bo"))]})  # fmt: skip
    due = future_nine_utc()
    set_due(schedule_id, due)
    errors: list[BaseException] = []
    for day in range(3):
        now = due + timedelta(days=day, seconds=10)
        barrier = threading.Barrier(3)

        def run(now: datetime = now, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(timeout=10)
                fire_due(now=now)
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        fired_at = due + timedelta(days=day)
        assert len(notified(org, transaction_id(schedule_id, fired_at))) == 3
    assert count(Notification, organisation_id=org) == 9
    assert count(Delivery, organisation_id=org) == 9
    assert fetch(Schedule, schedule_id).next_fire_at == due + timedelta(days=3)


def test_a_refused_firing_is_recorded_and_the_schedule_moves_on(code_workflow: uuid.UUID) -> None:
    org = code_workflow
    schedule_id = make_schedule(org, to=["ghost"], payload={"code": "3"})
    due = future_nine_utc()
    set_due(schedule_id, due)
    fire_due(now=due + timedelta(seconds=1))
    schedule = fetch(Schedule, schedule_id)
    assert schedule.last_error is not None
    assert schedule.last_error.startswith("trigger refused: to.0: no subscriber 'ghost'")
    assert (schedule.active, schedule.last_fired_at) == (True, None)
    assert schedule.next_fire_at == due + timedelta(days=1)
    assert count(Notification, organisation_id=org) == 0


def test_a_schedule_that_fell_behind_fires_once_then_catches_up(code_workflow: uuid.UUID) -> None:
    org = code_workflow
    schedule_id = make_schedule(org, cron="0 * * * *", payload={"code": "4"})
    due = future_nine_utc()
    set_due(schedule_id, due)
    # Beat was away for five and a half hours.
    fire_due(now=due + timedelta(hours=5, minutes=30))
    assert count(Notification, organisation_id=org) == 1
    assert fetch(Schedule, schedule_id).next_fire_at == due + timedelta(hours=6)


def test_every_due_schedule_fires_across_several_pages(
    code_workflow: uuid.UUID, settings_env: Callable[..., None]
) -> None:
    settings_env(schedule_batch_size=2)
    org = code_workflow
    due = future_nine_utc()
    ids = [make_schedule(org, payload={"code": str(i)}) for i in range(5)]
    for schedule_id in ids:
        set_due(schedule_id, due)
    deactivated = make_schedule(org, payload={"code": "x"})
    set_due(deactivated, due)
    run_action("deactivate_schedule", {"schedule_id": str(deactivated)}, organisation_id=org)
    fire_due(now=due + timedelta(seconds=1))
    for schedule_id in ids:
        assert len(notified(org, transaction_id(schedule_id, due))) == 1
    assert notified(org, transaction_id(deactivated, due)) == []
    assert fetch(Schedule, deactivated).next_fire_at is None


def next_clock_change(zone: ZoneInfo, start: date) -> date:
    day = start
    for _ in range(400):
        day += timedelta(days=1)
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=zone)
        if noon.utcoffset() != (noon - timedelta(days=1)).utcoffset():
            return day
    raise AssertionError("no clock change within a year")


def test_daily_nine_in_london_fires_at_nine_local_across_a_clock_change(
    code_workflow: uuid.UUID,
) -> None:
    org = code_workflow
    schedule_id = make_schedule(org, timezone="Europe/London", payload={"code": "5"})
    change = next_clock_change(LONDON, utcnow().date() + timedelta(days=2))
    eve = change - timedelta(days=1)
    first = datetime(eve.year, eve.month, eve.day, 9, tzinfo=LONDON).astimezone(ZoneInfo("UTC"))
    set_due(schedule_id, first)
    fired: list[datetime] = []
    for _ in range(3):
        due = fetch(Schedule, schedule_id).next_fire_at
        assert due is not None
        fire_due(now=due + timedelta(minutes=1))
        assert len(notified(org, transaction_id(schedule_id, due))) == 1
        fired.append(due)
    local = [moment.astimezone(LONDON) for moment in fired]
    assert [(moment.date(), moment.strftime("%H:%M")) for moment in local] == [
        (eve, "09:00"), (change, "09:00"), (change + timedelta(days=1), "09:00"),
    ]  # fmt: skip
    assert local[0].utcoffset() != local[1].utcoffset()
    assert fired[1] - fired[0] != timedelta(days=1)
    assert count(Notification, organisation_id=org) == 3


@pytest.mark.usefixtures("worker")
def test_the_fire_task_sent_twice_at_once_delivers_each_due_time_once(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    org = organisation_id
    wire(fake_provider, org)
    subscriber(org, "ada", first_name="Ada")
    subscriber(org, "bo", first_name="Bo")
    workflow(org, "code", [EMAIL_STEP])
    # Once a year: after this firing nothing else is due while the test runs.
    schedule_id = make_schedule(org, cron="0 0 1 1 *", to=["ada", "bo"], payload={"code": "9"})
    due = utcnow().replace(microsecond=0) - timedelta(seconds=1)
    set_due(schedule_id, due)
    queue = get_settings().delivery_queue
    results = [app.send_task(FIRE_TASK, queue=queue, ignore_result=False) for _ in range(2)]
    for result in results:
        result.get(timeout=60)
    views = wait_until_terminal(org, transaction_id(schedule_id, due))
    assert [(view.subscriber, view.status, view.integration) for view in views] == [
        ("ada", "sent", "primary"), ("bo", "sent", "primary"),
    ]  # fmt: skip
    requests = [
        item["delivery_id"]
        for item in fake_provider_requests(fake_provider)
        if item["delivery_id"] in {view.delivery_id for view in views}
    ]
    assert sorted(requests) == sorted(view.delivery_id for view in views)
    assert count(Notification, organisation_id=org) == 2
    schedule = fetch(Schedule, schedule_id)
    assert schedule.next_fire_at is not None
    assert schedule.next_fire_at > utcnow()


def fake_provider_requests(server: FakeProviderServer) -> list[dict[str, Any]]:
    return [item.__dict__ for item in list(server.state.requests)]


# --- retention ----------------------------------------------------------------------------------


class Rows:
    """Notifications with deliveries and attempts written as they would be N days ago."""

    def __init__(self, org: uuid.UUID, workflow_id: uuid.UUID, subscriber_id: uuid.UUID) -> None:
        self.org = org
        self.workflow_id = workflow_id
        self.subscriber_id = subscriber_id

    def notification(
        self,
        statuses: list[DeliveryStatus],
        *,
        age_days: float,
        updated_days: float | None = None,
        leader: uuid.UUID | None = None,
    ) -> tuple[uuid.UUID, list[uuid.UUID]]:
        created = utcnow() - timedelta(days=age_days)
        updated = utcnow() - timedelta(days=updated_days if updated_days is not None else age_days)
        notification_id = uuid.uuid4()
        delivery_ids = [uuid.uuid4() for _ in statuses]
        with database().transaction() as session:
            session.add(
                Notification(
                    id=notification_id, organisation_id=self.org, transaction_id=uuid.uuid4().hex,
                    workflow_id=self.workflow_id, subscriber_id=self.subscriber_id,
                    payload={}, digest_leader_id=leader, created_at=created, updated_at=updated,
                )
            )  # fmt: skip
            session.flush()
            for position, (delivery_id, status) in enumerate(
                zip(delivery_ids, statuses, strict=True)
            ):
                session.add(
                    Delivery(
                        id=delivery_id, organisation_id=self.org, notification_id=notification_id,
                        step_position=position, step_kind=StepKind.EMAIL, status=status,
                        created_at=created, updated_at=updated,
                    )
                )  # fmt: skip
                session.flush()
                session.add(
                    DeliveryAttempt(
                        organisation_id=self.org, delivery_id=delivery_id, provider="fake",
                        outcome=AttemptOutcome.SENT, created_at=created,
                    )
                )  # fmt: skip
        return notification_id, delivery_ids


def exists(model: type[Any], row_id: uuid.UUID) -> bool:
    return count(model, id=row_id) == 1


def attempts_of(delivery_id: uuid.UUID) -> int:
    return count(DeliveryAttempt, delivery_id=delivery_id)


def test_retention_removes_only_old_finished_records(
    organisation_id: uuid.UUID, settings_env: Callable[..., None]
) -> None:
    org = organisation_id
    rows = Rows(org, workflow(org, "code", [EMAIL_STEP]), subscriber(org, "ada"))
    sent, failed, skipped = DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED
    old_done, old_done_deliveries = rows.notification([sent, failed], age_days=40)
    old_open, (old_open_sent, old_open_retrying) = rows.notification(
        [sent, DeliveryStatus.RETRYING], age_days=40
    )
    recent_done, (recent_delivery,) = rows.notification([sent], age_days=1)
    late_finish, _ = rows.notification([sent], age_days=40, updated_days=2)
    open_digest, _ = rows.notification([DeliveryStatus.QUEUED], age_days=40)
    collected_open, _ = rows.notification([skipped], age_days=40, leader=open_digest)
    sent_digest, _ = rows.notification([sent], age_days=40)
    collected_sent, _ = rows.notification([skipped], age_days=40, leader=sent_digest)
    no_steps, _ = rows.notification([], age_days=40)
    inbox_id = uuid.uuid4()
    with database().transaction() as session:
        session.add(
            InboxMessage(
                id=inbox_id, organisation_id=org, subscriber_id=rows.subscriber_id,
                delivery_id=old_done_deliveries[0], body="hello",
            )
        )  # fmt: skip
    removed = {old_done, sent_digest, collected_sent, no_steps}
    kept = {old_open, recent_done, late_finish, open_digest, collected_open}

    settings_env(retention_days=60, retention_batch_size=2)
    purge()
    assert all(exists(Notification, item) for item in removed | kept)

    settings_env(retention_days=30, retention_batch_size=2)
    purge()
    assert [item for item in removed if exists(Notification, item)] == []
    assert [item for item in kept if not exists(Notification, item)] == []
    for delivery_id in old_done_deliveries:
        assert not exists(Delivery, delivery_id)
        assert attempts_of(delivery_id) == 0
    # An unfinished notification keeps its deliveries; only the finished one's old attempts go.
    assert exists(Delivery, old_open_sent) and exists(Delivery, old_open_retrying)
    assert (attempts_of(old_open_sent), attempts_of(old_open_retrying)) == (0, 1)
    assert attempts_of(recent_delivery) == 1
    # The subscriber's inbox outlives the delivery record.
    assert fetch(InboxMessage, inbox_id).delivery_id is None


# --- circuit probe ------------------------------------------------------------------------------


def fail_until_open(integration_id: uuid.UUID) -> None:
    store = circuit_store()
    for _ in range(get_settings().circuit_failure_threshold):
        store.record_failure(str(integration_id))
    assert store.is_open(str(integration_id))
    with database().transaction() as session:
        session.execute(
            update(Integration)
            .where(Integration.id == integration_id)
            .values(status=IntegrationStatus.ERROR)
        )


def wait_for_cool_down(integration_ids: list[uuid.UUID], timeout: float = 30.0) -> None:
    store = circuit_store()
    deadline = time.monotonic() + timeout
    while store.open_many([str(item) for item in integration_ids]):
        assert time.monotonic() < deadline, "the circuits did not cool down"
        time.sleep(0.1)


def integration(org: uuid.UUID, name: str, provider: str, settings: dict[str, Any]) -> uuid.UUID:
    return act(
        org,
        "create_integration",
        {"name": name, "provider": provider, "channel_type": "email",
         "credentials": {"api_key": f"SECRET-{name}"}, "settings": settings},
    )  # fmt: skip


def status(integration_id: uuid.UUID) -> IntegrationStatus:
    return fetch(Integration, integration_id).status


def test_the_probe_closes_a_cooled_down_circuit_that_answers_well(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer, redis_url: str
) -> None:
    org = organisation_id
    healthy = wire(fake_provider, org, names=("healthy",)).integrations["healthy"]
    unreachable = integration(
        org, "unreachable", "fake_http", {"url": f"http://127.0.0.1:{free_port()}/x"}
    )
    refused = integration(org, "refused", "fake_http", {"url": f"{fake_provider.url}/x"})
    unchecked = integration(org, "unchecked", "fake", {})
    everything = [healthy, unreachable, refused, unchecked]
    for integration_id in everything:
        fail_until_open(integration_id)
    # A server that would answer well, on a loopback address outside the allow-list: the guard
    # refuses it before any request.
    outside = FakeProviderServer(host="127.0.0.2").start()
    try:
        with database().transaction() as session:
            session.execute(
                update(Integration)
                .where(Integration.id == refused)
                .values(settings={"url": f"{outside.url}/x"})
            )
        _probe_and_check(healthy, unreachable, refused, unchecked, redis_url)
    finally:
        outside.stop()


def _probe_and_check(
    healthy: uuid.UUID,
    unreachable: uuid.UUID,
    refused: uuid.UUID,
    unchecked: uuid.UUID,
    redis_url: str,
) -> None:
    everything = [healthy, unreachable, refused, unchecked]
    while_open = probe()
    assert set(while_open.closed) & {str(item) for item in everything} == set()
    assert {status(item) for item in everything} == {IntegrationStatus.ERROR}

    wait_for_cool_down(everything)
    report = probe()
    assert str(healthy) in report.closed
    assert status(healthy) is IntegrationStatus.ACTIVE
    assert not circuit_store().is_open(str(healthy))
    assert redis.Redis.from_url(redis_url).get(FAILURES_PREFIX + str(healthy)) is None
    assert {str(unreachable), str(refused)} <= set(report.failing)
    assert str(unchecked) in report.unchecked
    for left in (unreachable, refused, unchecked):
        assert status(left) is IntegrationStatus.ERROR
        assert redis.Redis.from_url(redis_url).get(FAILURES_PREFIX + str(left)) is not None


def test_retention_removes_old_finished_webhook_events_only(
    organisation_id: uuid.UUID, settings_env: Callable[..., None]
) -> None:
    view, _ = create_endpoint(
        organisation_id, url="http://127.0.0.1:9/hooks", event_types=["message.sent"]
    )
    now = utcnow()
    ages = {
        "old_sent": (WebhookEventStatus.SENT, 40), "old_failed": (WebhookEventStatus.FAILED, 40),
        "old_retrying": (WebhookEventStatus.RETRYING, 40), "new_sent": (WebhookEventStatus.SENT, 1),
    }  # fmt: skip
    ids = {name: uuid.uuid4() for name in ages}
    with database().transaction() as session:
        for name, (status, days) in ages.items():
            at = now - timedelta(days=days)
            session.add(
                WebhookEvent(
                    id=ids[name], organisation_id=organisation_id, endpoint_id=view.id,
                    event_id=uuid.uuid4(), type=WebhookEventType.MESSAGE_SENT, payload={},
                    status=status, created_at=at, updated_at=at,
                )
            )  # fmt: skip
        session.flush()
        session.add(
            WebhookEventAttempt(
                organisation_id=organisation_id, webhook_event_id=ids["old_sent"],
                outcome=AttemptOutcome.SENT, created_at=now - timedelta(days=40),
            )
        )  # fmt: skip
    settings_env(retention_days=30, retention_batch_size=1)
    report = purge()
    assert report.webhook_events >= 2
    assert not exists(WebhookEvent, ids["old_sent"]) and not exists(WebhookEvent, ids["old_failed"])
    assert exists(WebhookEvent, ids["old_retrying"]) and exists(WebhookEvent, ids["new_sent"])
    assert count(WebhookEventAttempt, webhook_event_id=ids["old_sent"]) == 0
