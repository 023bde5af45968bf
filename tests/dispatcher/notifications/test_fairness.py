"""One tenant's blast delays neither critical workflows nor other tenants' notifications."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from dispatcher import create_organisation, trigger, trigger_bulk
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.runtime.resources import database
from models import Delivery
from tests.dispatcher.notify_support import (
    EMAIL_STEP,
    subscriber,
    wait_until_terminal,
    wire,
    workflow,
)

pytestmark = pytest.mark.usefixtures("worker")
BLAST = 1500  # above the direct-enqueue limit: fed by the outbox pump in rounds


def sent_times(organisation_id: uuid.UUID) -> list[datetime]:
    with database().session() as session:
        return sorted(
            stamp
            for stamp in session.scalars(
                select(Delivery.sent_at).where(Delivery.organisation_id == organisation_id)
            )
            if stamp is not None
        )


def test_a_blast_does_not_starve_critical_or_other_tenants(
    fake_provider: FakeProviderServer,
) -> None:
    blaster, other, security = (
        create_organisation(name) for name in ("Blaster", "Other", "Security")
    )
    for organisation_id in (blaster, other, security):
        wire(fake_provider, organisation_id, names=("primary",),
             behaviours={"primary": {"latency_ms": 20}})  # fmt: skip
        workflow(organisation_id, "code", [EMAIL_STEP], critical=organisation_id == security)
    with database().transaction() as session:
        from models import Subscriber

        session.execute(
            Subscriber.__table__.insert(),
            [{"id": uuid.uuid4(), "organisation_id": blaster, "external_id": f"b{n}", "email": f"b{n}@example.com",
              "channels": {}, "data": {}, "meta": {}, "created_at": datetime.now().astimezone(), "updated_at": datetime.now().astimezone()}
             for n in range(BLAST)],
        )  # fmt: skip
    subscriber(other, "o")
    subscriber(security, "s")

    blast = trigger_bulk(
        blaster,
        [{"workflow": "code", "to": [f"b{n}" for n in range(BLAST)], "payload": {"code": "1"}}],
    )[0]
    small = trigger(other, "code", "o", {"code": "2"})
    reset = trigger(security, "code", "s", {"code": "3"})

    wait_until_terminal(other, small.transaction_id, timeout=60)
    wait_until_terminal(security, reset.transaction_id, timeout=60)
    wait_until_terminal(blaster, blast.transaction_id, timeout=120)
    blast_times = sent_times(blaster)
    assert len(blast_times) == BLAST
    halfway = blast_times[len(blast_times) // 2]
    # Both went out before half of the blast had: they did not queue behind it.
    assert sent_times(other)[0] < halfway
    assert sent_times(security)[0] < halfway
