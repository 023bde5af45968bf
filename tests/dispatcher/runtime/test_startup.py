"""A worker, beat or API that cannot decrypt credentials refuses to start: real processes, real
PostgreSQL. Before this check a worker with a malformed key logged the error from its start-up
signal, reported ready and answered pings while every delivery waited."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dispatcher.dev.api_process import api_command
from dispatcher.dev.worker_process import worker_command
from dispatcher.runtime.resources import database
from dispatcher.runtime.startup import check_stored_credentials, require_working_keys
from tests.conftest import DATA_DIR, TEST_KEY, free_port
from tests.dispatcher.notify_support import act

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")

BEAT = [sys.executable, "-m", "celery", "-A", "dispatcher", "beat", "--loglevel", "INFO"]


def start(command: list[str], **environment: str) -> subprocess.CompletedProcess[str]:
    """Run the process until it exits on its own; one that starts anyway is stopped at the
    timeout and reported as such (it must not happen)."""
    env = {**os.environ, **environment}
    try:
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{shlex.join(command[1:])} started although it must refuse:\n{exc.stdout!r}")


def worker(**environment: str) -> subprocess.CompletedProcess[str]:
    hostname = f"refused-{uuid.uuid4().hex[:8]}@%h"
    return start(worker_command(concurrency=1, hostname=hostname), **environment)


def beat(**environment: str) -> subprocess.CompletedProcess[str]:
    schedule = DATA_DIR / f"beat-{uuid.uuid4().hex[:8]}"
    return start([*BEAT, "--schedule", str(schedule)], **environment)


def api(**environment: str) -> subprocess.CompletedProcess[str]:
    return start(api_command(port=free_port()), **environment)


def stored_credentials(organisation_id: uuid.UUID) -> None:
    act(
        organisation_id,
        "create_integration",
        {
            "name": "mail",
            "provider": "fake",
            "channel_type": "email",
            "credentials": {"api_key": "SECRET-start-up"},
        },
    )


@pytest.mark.worker
@pytest.mark.parametrize("run", [worker, beat, api], ids=["worker", "beat", "api"])
def test_a_malformed_key_stops_the_process_with_the_message(run: object) -> None:
    done = run(DISPATCHER_ENCRYPTION_KEYS="short,garbage")  # type: ignore[operator]
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert (
        "refuses to start: DISPATCHER_ENCRYPTION_KEYS: encryption key #1 is not a Fernet key"
        in output
    )
    assert "garbage" not in output and "short" not in output.replace("shortest", "")


@pytest.mark.worker
def test_a_missing_key_off_the_embedded_default_stops_the_worker() -> None:
    environment = dict(os.environ)
    environment.pop("DISPATCHER_ENCRYPTION_KEYS")
    done = subprocess.run(
        worker_command(concurrency=1, hostname=f"refused-{uuid.uuid4().hex[:8]}@%h"),
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "refuses to start: DISPATCHER_ENCRYPTION_KEYS is required" in done.stdout + done.stderr


@pytest.mark.worker
@pytest.mark.parametrize("run", [worker, beat, api], ids=["worker", "beat", "api"])
def test_a_well_formed_wrong_key_stops_the_process(run: object, organisation_id: uuid.UUID) -> None:
    stored_credentials(organisation_id)
    wrong = Fernet.generate_key().decode()
    done = run(DISPATCHER_ENCRYPTION_KEYS=wrong)  # type: ignore[operator]
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "opens none of the" in output and "dispatcher keys rotate" in output
    assert wrong not in output and TEST_KEY not in output


def test_the_right_ring_passes_and_counts_what_it_checked(organisation_id: uuid.UUID) -> None:
    stored_credentials(organisation_id)
    result = require_working_keys(database())
    assert result is not None and result.checked >= 1 and not result.opens_none
    # The ring with the wrong key in front still opens them (old keys keep decrypting).
    everything = check_stored_credentials(database(), limit=None)
    assert everything.checked >= result.checked


def test_an_unreachable_database_is_not_a_reason_to_refuse(tmp_path: Path) -> None:
    from dispatcher.runtime.db import Database

    unreachable = Database("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    try:
        assert require_working_keys(unreachable) is None
    finally:
        unreachable.dispose()


def test_the_probe_counts_undecryptable_integrations_into_a_metric(
    organisation_id: uuid.UUID,
) -> None:
    import sqlalchemy as sa

    from dispatcher.observability.metrics import worker_metrics
    from dispatcher.tasks.maintenance import probe_circuits

    stored_credentials(organisation_id)
    before = probe_circuits()["undecryptable"]
    foreign = Fernet(Fernet.generate_key()).encrypt(b'{"api_key": "x"}').decode()
    with database().engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE integrations SET credentials = :token WHERE id = ("
                "SELECT id FROM integrations WHERE organisation_id = :org LIMIT 1)"
            ),
            {"token": foreign, "org": organisation_id},
        )
    try:
        report = probe_circuits()
        assert report["undecryptable"] == before + 1
        assert worker_metrics.undecryptable._value.get() == before + 1  # type: ignore[attr-defined]
    finally:
        # Other tests (key rotation) walk every stored credential of the shared database.
        with database().engine.begin() as connection:
            connection.execute(
                sa.text("DELETE FROM integrations WHERE organisation_id = :org"),
                {"org": organisation_id},
            )
