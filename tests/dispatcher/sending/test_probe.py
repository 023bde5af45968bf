"""The circuit probe prepares an integration as a send does (same guard, same allow-list), and
an unreachable circuit store fails no probe run."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import update

from dispatcher.runtime.resources import database
from dispatcher.sending import batch
from dispatcher.sending.probe import probe
from models import Integration, IntegrationStatus
from tests.conftest import free_port
from tests.dispatcher.support import fetch
from tests.security.support import Route, ScriptedServer, act

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")


@pytest.fixture
def outside() -> Iterator[ScriptedServer]:
    """A server on a loopback address the suite's allow-list (127.0.0.1) does not name."""
    with ScriptedServer(host="127.0.0.2").running() as running:
        yield running


def in_error(organisation_id: uuid.UUID, url: str) -> uuid.UUID:
    integration_id = act(organisation_id, "create_integration", {
        "name": "probed", "provider": "fake_http", "credentials": {"api_key": "key"},
        "settings": {"url": url},
    })  # fmt: skip
    with database().transaction() as session:
        session.execute(
            update(Integration)
            .where(Integration.id == integration_id)
            .values(status=IntegrationStatus.ERROR)
        )
    return integration_id


@pytest.fixture
def fresh_runtime() -> Iterator[None]:
    """A sending runtime built from this test's settings, not left to the next test."""
    batch.sending_runtime.cache_clear()
    yield
    batch.sending_runtime().close()
    batch.sending_runtime.cache_clear()


@pytest.mark.usefixtures("fresh_runtime")
def test_the_probe_refuses_what_sending_refuses_and_admits_the_allow_list(
    organisation_id: uuid.UUID,
    outside: ScriptedServer,
    settings_env: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    integration_id = in_error(organisation_id, outside.route("/check", Route(200, "{}")))
    with caplog.at_level(logging.WARNING):
        report = probe()
    assert str(integration_id) in report.failing
    assert outside.seen == []
    # The reason a send through it records (tests/dispatcher/cli/test_cli_integrations.py).
    assert (
        f"integration {integration_id}: not probed: settings.url refused: host '127.0.0.2' is "
        "a loopback address" in caplog.text
    )
    assert fetch(Integration, integration_id).status is IntegrationStatus.ERROR

    settings_env(url_allowlist="127.0.0.1,127.0.0.2")
    # The process's sending runtime is built from the settings once (its connector enforces
    # the allow-list): build it again.
    batch.sending_runtime.cache_clear()
    report = probe()
    assert str(integration_id) in report.closed
    assert [seen.method for seen in outside.seen] == ["GET"]
    assert fetch(Integration, integration_id).status is IntegrationStatus.ACTIVE


@pytest.fixture
def unreachable_circuit_store(settings_env: Callable[..., None]) -> Iterator[None]:
    settings_env(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    batch.circuit_store.cache_clear()
    yield
    batch.circuit_store.cache_clear()


@pytest.mark.usefixtures("unreachable_circuit_store")
def test_the_probe_goes_on_when_the_circuit_store_is_unreachable(
    organisation_id: uuid.UUID, caplog: pytest.LogCaptureFixture
) -> None:
    with ScriptedServer().running() as server:
        integration_id = in_error(organisation_id, server.route("/check", Route(200, "{}")))
        with caplog.at_level(logging.WARNING):
            report = probe()
    assert str(integration_id) in report.closed
    assert "circuit store unavailable (ConnectionError)" in caplog.text
