"""An organisation with many subscribers wired to the fake provider, and triggers in chunks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dispatcher import TriggerReceipt, create_organisation, trigger_bulk
from dispatcher.runtime.resources import database
from models import Subscriber
from tests.chaos.stack import Stack
from tests.dispatcher.notify_support import EMAIL_STEP, Wiring, wire, workflow

WORKFLOW = "chaos"


@dataclass
class Tenant:
    organisation_id: uuid.UUID
    wiring: Wiring
    external_ids: list[str]

    def path(self, name: str) -> str:
        return self.wiring.paths[name]


def tenant(
    stack: Stack,
    subscribers: int,
    *,
    names: tuple[str, ...] = ("primary", "secondary"),
    behaviours: dict[str, dict[str, Any]] | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
    label: str = "Chaos",
) -> Tenant:
    """``behaviours`` and ``settings``: of the fake server's paths and of the integrations, by
    integration name."""
    organisation_id = create_organisation(f"{label} {uuid.uuid4().hex[:6]}")
    wiring = wire(
        stack.fake, organisation_id, names=names, behaviours=behaviours, settings=settings
    )
    workflow(organisation_id, WORKFLOW, [EMAIL_STEP])
    prefix = organisation_id.hex[:8]
    external_ids = [f"{prefix}-{number}" for number in range(subscribers)]
    rows = [
        {
            "id": uuid.uuid4(),
            "organisation_id": organisation_id,
            "external_id": external_id,
            "email": f"{external_id}@example.com",
            "first_name": f"User{number}",
            "channels": {},
            "data": {},
            "meta": {},
        }
        for number, external_id in enumerate(external_ids)
    ]
    with database().transaction() as session:
        for start in range(0, len(rows), 5000):
            session.execute(sa.insert(Subscriber), rows[start : start + 5000])
    return Tenant(organisation_id, wiring, external_ids)


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def trigger_all(
    tenant_: Tenant,
    recipients: Sequence[str] | None = None,
    *,
    per_event: int = 500,
    events_per_call: int = 4,
    label: str = "run",
) -> list[TriggerReceipt]:
    """Every recipient once: events of ``per_event`` recipients, several events per call."""
    events = [
        {
            "workflow": WORKFLOW,
            "to": group,
            "payload": {"code": f"{label}-{number}"},
            "transaction_id": f"{label}-{tenant_.organisation_id.hex[:8]}-{number}",
        }
        for number, group in enumerate(chunks(recipients or tenant_.external_ids, per_event))
    ]
    receipts: list[TriggerReceipt] = []
    for start in range(0, len(events), events_per_call):
        receipts += trigger_bulk(tenant_.organisation_id, events[start : start + events_per_call])
    return receipts
