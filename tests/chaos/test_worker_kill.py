"""A worker killed with SIGKILL in the middle of a run: nothing lost, duplicates bounded."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.chaos.accounting import count
from tests.chaos.scenario import tenant, trigger_all
from tests.chaos.stack import Stack, chaos_stack, descendants
from tests.conftest import rabbitmq_vhost

#: Per broker: RabbitMQ's run is shorter (the suite's time), long enough to catch sends in flight.
DELIVERIES = {"redis": 10_000, "rabbitmq": 3_000}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.usefixtures("postgres_url", "redis_url"),
]


@contextmanager
def broker_url(kind: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """``None``: the stack's own Redis broker; else a RabbitMQ vhost of this test only."""
    if kind == "redis":
        yield None
    else:
        with rabbitmq_vhost(request.getfixturevalue("rabbitmq_url")) as vhost:
            yield vhost.url


def requests_in_flight(stack: Stack, organisation_id: uuid.UUID, deliveries: int) -> bool:
    """Past 30% of the run, the provider holds requests for deliveries still being sent."""
    with stack.engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT id, status FROM deliveries WHERE organisation_id = :org"),
            {"org": organisation_id},
        ).all()
    if sum(1 for row in rows if row.status == "sent") < deliveries * 0.3:
        return False
    sending = {str(row.id) for row in rows if row.status == "sending"}
    return any(item.delivery_id in sending for item in stack.fake.state.requests[-200:])


@pytest.mark.timeout(600)
@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_a_worker_killed_mid_run_loses_nothing_and_repeats_only_its_sends_in_flight(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, say: Callable[[str], None]
) -> None:
    deliveries = DELIVERIES[kind]
    with broker_url(kind, request) as url, chaos_stack(tmp_path, broker_url=url) as stack:
        # The provider answers after 200 ms, so a batch spends most of its time in flight.
        org = tenant(
            stack, deliveries, names=("primary",), behaviours={"primary": {"latency_ms": 200}}
        )
        trigger_all(org, per_event=500, events_per_call=4)
        deadline = time.monotonic() + 300
        while not requests_in_flight(stack, org.organisation_id, deliveries):
            assert time.monotonic() < deadline, "no sends to kill the worker in the middle of"
            time.sleep(0.02)
        killed = stack.kill_worker()
        # The dead worker writes nothing more, and the sweeper needs a live worker to run: this
        # is the state at the kill instant.
        at_kill = stack.status_counts(org.organisation_id)
        in_flight = at_kill.get("sending", 0)
        say(
            f"SIGKILL to {killed} worker processes; at the kill: {at_kill}; sends in flight: {in_flight}"
        )
        stack.start_worker()
        stack.wait_until_terminal(org.organisation_id, deliveries, timeout=180)
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
        say(f"worker kill: {figures.line()}")
        recovered = stack.worker.log()
    assert killed >= 3  # the main process and its two pool children
    assert figures.deliveries == deliveries
    assert figures.unfinished == 0
    assert figures.lost == 0
    assert figures.failed_but_accepted == 0
    assert in_flight > 0, at_kill  # the kill is meant to catch sends in flight
    # Besides the sends in flight at the kill, a request that outlasted the send timeout on this
    # loaded machine is ambiguous and resent by default: counted apart, in the line above.
    assert figures.unexplained_duplicates <= in_flight
    assert "deliveries were being sent by a worker that stopped" in recovered


ROLLING = 2_000


@pytest.mark.timeout(240)
def test_rolling_kills_of_a_pool_process_repeat_only_sends_in_flight(
    tmp_path: Path, say: Callable[[str], None]
) -> None:
    with chaos_stack(tmp_path) as stack:
        org = tenant(
            stack, ROLLING, names=("primary",), behaviours={"primary": {"latency_ms": 200}}
        )
        trigger_all(org, per_event=500, events_per_call=4)
        kills: list[set[str]] = []
        while len(kills) < 4:
            time.sleep(3)
            children = descendants(stack.worker.process.pid)
            if not children:
                continue
            os.kill(children[0], signal.SIGKILL)
            requested = {item.delivery_id for item in list(stack.fake.state.requests)}
            # Sending now and already requested: in flight at the kill, in either pool process.
            with stack.engine.connect() as connection:
                sending = {
                    str(row[0])
                    for row in connection.execute(
                        sa.text(
                            "SELECT id FROM deliveries WHERE organisation_id = :org "
                            "AND status = 'sending'"
                        ),
                        {"org": org.organisation_id},
                    )
                }
            kills.append(sending & requested)
        stack.wait_until_terminal(org.organisation_id, ROLLING, timeout=150)
        figures = count(stack.engine, [org.organisation_id], stack.fake.state.requests)
        accepted = Counter(
            item.delivery_id for item in stack.fake.state.requests if item.answer == "ok"
        )
    repeated = {key for key, number in accepted.items() if number > 1}
    for number, in_flight in enumerate(kills, 1):
        say(
            f"kill {number}: sends in flight {len(in_flight)}, "
            f"duplicates among them {len(repeated & in_flight)}"
        )
    say(f"rolling kills: {figures.line()}")
    assert figures.lost == 0
    assert figures.failed_but_accepted == 0
    assert repeated <= set().union(*kills)
    assert figures.duplicates <= sum(len(in_flight) for in_flight in kills)
