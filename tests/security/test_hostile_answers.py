"""One tenant's data or endpoint must not break the batch it shares with other tenants.

A batch is written back in one transaction: a value that does not fit its column (a message id a
tenant's own webhook endpoint chose, an in-app title a tenant's template produced) must be cut or
refused for that delivery alone, or every delivery of the batch is sent again and again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from dispatcher import trigger
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.notifications.status import transaction_status
from dispatcher.organisations import create_organisation
from dispatcher.sending.batch import process_batch
from tests.dispatcher.notify_support import act, subscriber, wire, workflow
from tests.security.support import (
    Route,
    ScriptedServer,
    email_step,
    open_deliveries,
    parked,
    sending_settings,
)

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer().running() as running:
        yield running


def neighbour(fake: FakeProviderServer) -> uuid.UUID:
    """An ordinary organisation with one parked email to send."""
    org = create_organisation("Neighbour")
    wire(fake, org, names=("only",))
    subscriber(org, "ada")
    workflow(org, "w", parked(email_step()))
    trigger(org, "w", "ada", transaction_id="t")
    return org


def statuses(*organisations: uuid.UUID) -> list[str]:
    return [view.status for org in organisations for view in transaction_status(org, "t")]


def test_a_webhook_answering_with_a_huge_message_id_breaks_no_batch(
    server: ScriptedServer, fake_provider: FakeProviderServer
) -> None:
    hostile = create_organisation("Hostile")
    url = server.route("/hook", Route(200, '{"id": "' + "x" * 600 + '"}'))
    act(hostile, "create_integration", {"name": "hook", "provider": "webhook",
                                        "credentials": {"signing_secret": "s-123456789"}})  # fmt: skip
    act(hostile, "create_subscriber", {"external_id": "ada", "channels": {"webhook": {"url": url}}})
    workflow(hostile, "w", parked({"kind": "webhook", "template": {"body": "hi"}}))
    trigger(hostile, "w", "ada", transaction_id="t")
    calm = neighbour(fake_provider)
    process_batch(open_deliveries(hostile) + open_deliveries(calm), sending_settings())
    assert statuses(hostile, calm) == ["sent", "sent"]


def test_an_in_app_title_longer_than_its_column_breaks_no_batch(
    fake_provider: FakeProviderServer,
) -> None:
    hostile = create_organisation("Long titles")
    subscriber(hostile, "ada")
    workflow(hostile, "w", parked(
        {"kind": "in_app", "template": {"title": "{{ 'x' * 600 }}", "body": "hi"}}))  # fmt: skip
    trigger(hostile, "w", "ada", transaction_id="t")
    calm = neighbour(fake_provider)
    process_batch(open_deliveries(hostile) + open_deliveries(calm), sending_settings())
    assert statuses(calm) == ["sent"]
    assert statuses(hostile) in (["sent"], ["failed"])
