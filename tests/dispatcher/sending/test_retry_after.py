"""A provider's Retry-After beyond ``retry_after_cap``: the delivery falls back to the next
integration at once, or waits the cap when none is left (never the provider's 30 days)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from dispatcher import trigger
from dispatcher.notifications.status import transaction_status
from dispatcher.sending.batch import process_batch
from tests.security.support import (
    Route,
    ScriptedServer,
    act,
    email_step,
    open_deliveries,
    parked,
    sending_settings,
)

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")

THIRTY_DAYS = 30 * 24 * 3600
CAP = 45.0


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer().running() as running:
        yield running


def integration(organisation_id: uuid.UUID, name: str, url: str, position: int) -> uuid.UUID:
    return act(organisation_id, "create_integration", {
        "name": name, "provider": "fake_http", "credentials": {"api_key": f"key-{name}"},
        "settings": {"url": url}, "priority": position, "is_primary": position == 0,
    })  # fmt: skip


def one_email(organisation_id: uuid.UUID) -> list[str]:
    act(organisation_id, "create_subscriber", {"external_id": "ada", "email": "ada@example.com"})
    act(
        organisation_id, "create_workflow", {"key": "w", "name": "w", "steps": parked(email_step())}
    )
    trigger(organisation_id, "w", "ada", {}, transaction_id="tx-retry-after")
    return open_deliveries(organisation_id)


def test_a_pause_beyond_the_cap_falls_back_to_the_next_integration_at_once(
    server: ScriptedServer, organisation_id: uuid.UUID
) -> None:
    paused = server.route("/paused", Route(429, "{}", {"Retry-After": str(THIRTY_DAYS)}))
    integration(organisation_id, "paused", paused, 0)
    integration(organisation_id, "spare", server.route("/spare", Route(200, '{"id": "m-9"}')), 1)
    report = process_batch(one_email(organisation_id), sending_settings(retry_after_cap=CAP))
    assert (report.sent, report.retrying) == (1, [])
    [view] = transaction_status(organisation_id, "tx-retry-after")
    assert (view.status, view.integration, view.attempts) == ("sent", "spare", 2)


def test_a_pause_beyond_the_cap_with_no_other_integration_waits_the_cap(
    server: ScriptedServer, organisation_id: uuid.UUID
) -> None:
    paused = server.route("/paused", Route(429, "{}", {"Retry-After": str(THIRTY_DAYS)}))
    integration(organisation_id, "paused", paused, 0)
    [delivery_id] = one_email(organisation_id)
    report = process_batch([delivery_id], sending_settings(retry_after_cap=CAP))
    assert report.retrying == [(uuid.UUID(delivery_id), CAP, False)]
    [view] = transaction_status(organisation_id, "tx-retry-after")
    assert view.status == "retrying" and view.last_error is not None
    assert "429" in view.last_error


def test_a_pause_within_the_cap_is_honoured_on_the_same_integration(
    server: ScriptedServer, organisation_id: uuid.UUID
) -> None:
    paused = server.route("/paused", Route(429, "{}", {"Retry-After": "30"}))
    integration(organisation_id, "paused", paused, 0)
    integration(organisation_id, "spare", server.route("/spare", Route(200, '{"id": "m-9"}')), 1)
    [delivery_id] = one_email(organisation_id)
    report = process_batch([delivery_id], sending_settings(retry_after_cap=CAP))
    assert report.retrying == [(uuid.UUID(delivery_id), 30.0, False)]
