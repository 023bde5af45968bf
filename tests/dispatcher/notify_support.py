"""Helpers for the notification tests: an organisation wired to the local fake provider."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from dispatcher import Ok, run_action
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.notifications.status import DeliveryView, transaction_status
from dispatcher.runtime.resources import database
from models import DeliveryAttempt, Integration
from tests.dispatcher.support import created_id, fetch, subscriber_row_id

TERMINAL = {"sent", "failed", "skipped", "cancelled"}


@dataclass
class Wiring:
    organisation_id: uuid.UUID
    integrations: dict[str, uuid.UUID]
    paths: dict[str, str]


def act(organisation_id: uuid.UUID, name: str, arguments: dict[str, Any]) -> uuid.UUID:
    """Run an action; the value is the created row's id (a subscriber's is looked up by the
    external id ``create_subscriber`` answers)."""
    result = run_action(name, arguments, organisation_id=organisation_id)
    if name == "create_subscriber":
        assert result == Ok(arguments["external_id"]), result
        return subscriber_row_id(organisation_id, arguments["external_id"])
    return created_id(result)


def wire(
    fake: FakeProviderServer,
    organisation_id: uuid.UUID,
    names: tuple[str, ...] = ("primary", "secondary"),
    channel: str = "email",
    behaviours: dict[str, dict[str, Any]] | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
) -> Wiring:
    """One fake_http integration per name, in that order of preference, each on its own path;
    ``settings`` adds to an integration's settings by name."""
    wiring = Wiring(organisation_id, {}, {})
    for position, name in enumerate(names):
        path = f"{organisation_id.hex[:12]}-{channel}-{name}"
        fake.configure(path, **(behaviours or {}).get(name, {}))
        wiring.paths[name] = path
        wiring.integrations[name] = act(
            organisation_id,
            "create_integration",
            {
                "name": name, "provider": "fake_http", "channel_type": channel,
                "credentials": {"api_key": f"SECRET-{name}-key"},
                "settings": {"url": f"{fake.url}/{path}", **(settings or {}).get(name, {})},
                "is_primary": position == 0, "priority": position,
            },
        )  # fmt: skip
    return wiring


def subscriber(organisation_id: uuid.UUID, external_id: str, **fields: Any) -> uuid.UUID:
    """Create a subscriber; the value is its row id, for reading rows (actions take the
    external id, which ``create_subscriber`` answers)."""
    arguments = {"external_id": external_id, "email": f"{external_id}@example.com", **fields}
    created = run_action("create_subscriber", arguments, organisation_id=organisation_id)
    assert created == Ok(external_id), created
    return subscriber_row_id(organisation_id, external_id)


def workflow(
    organisation_id: uuid.UUID, key: str, steps: list[dict[str, Any]], **fields: Any
) -> uuid.UUID:
    return act(
        organisation_id, "create_workflow", {"key": key, "name": key, "steps": steps, **fields}
    )


EMAIL_STEP = {
    "kind": "email",
    "template": {"subject": "Hi {{ subscriber.first_name }}", "body": "Code {{ payload.code }}"},
}


def wait_until_terminal(
    organisation_id: uuid.UUID, transaction_id: str, timeout: float = 30.0
) -> list[DeliveryView]:
    deadline = time.monotonic() + timeout
    views: list[DeliveryView] = []
    while time.monotonic() < deadline:
        views = transaction_status(organisation_id, transaction_id)
        if views and all(view.status in TERMINAL for view in views):
            return views
        time.sleep(0.1)
    raise AssertionError(
        f"not terminal after {timeout}s: {[(v.status, v.last_error) for v in views]}"
    )


def attempts(delivery_id: str) -> list[tuple[str, str, int | None]]:
    """(integration name, outcome, HTTP status) of every attempt, in order."""
    with database().session() as session:
        rows = session.execute(
            select(Integration.name, DeliveryAttempt.outcome, DeliveryAttempt.http_status)
            .join(Integration, Integration.id == DeliveryAttempt.integration_id)
            .where(DeliveryAttempt.delivery_id == uuid.UUID(delivery_id))
            .order_by(DeliveryAttempt.created_at)
        ).all()
    return [(name, outcome.value, status) for name, outcome, status in rows]


def attempt_times(delivery_id: str) -> list[float]:
    with database().session() as session:
        stamps = session.scalars(
            select(DeliveryAttempt.created_at)
            .where(DeliveryAttempt.delivery_id == uuid.UUID(delivery_id))
            .order_by(DeliveryAttempt.created_at)
        ).all()
    return [stamp.timestamp() for stamp in stamps]


__all__ = ["fetch"]
